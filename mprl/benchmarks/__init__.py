"""mprl's benchmarks: `mprl bench learner` (learner speed: RLlib vs a plain loop vs d3rlpy),
`mprl bench algorithms` (Hopper medium scores, ours vs d3rlpy), `mprl bench opt`,
`mprl bench serve` (`serve`: act latency and throughput, videos), `mprl bench scheduler`
(`scheduler`: phase transition cost), `mprl bench sim2real`.

Imports nothing heavy here, so `mprl --help` stays fast."""

"""mprl's benchmarks: `mprl bench learner` (learner speed: RLlib vs a plain loop vs d3rlpy),
`mprl bench algorithms` (Hopper medium scores, ours vs d3rlpy), `mprl bench opt`,
`mprl bench o2o` (the offline-to-online catalogue side by side), `mprl bench serve` (`serve`:
act latency and throughput, videos), `mprl bench scheduler` (`scheduler`: phase transition
cost), `mprl bench sim2real`, `mprl bench regimes`, `mprl bench subroutine`; `outputs.py` the
files every pipeline bench writes.

Imports nothing heavy here, so `mprl --help` stays fast."""

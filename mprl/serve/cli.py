"""`mprl serve` and `mprl video`: the command-line side of the Serve app and of behaviour videos."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from mprl.errors import MprlError


def cmd_serve(args: argparse.Namespace) -> int:
    import ray
    from ray import serve

    from mprl.serve.app import (
        ServeSettings,
        check_ports,
        enable_direct_ingress,
        resolve_control_token,
        resolve_token,
        start,
    )

    _local_storage(args.storage_path)
    storage = Path(args.storage_path)
    if not storage.is_dir():
        print(f"mprl serve: note: {storage} does not exist yet; runs will appear when `mprl run` writes there.")
    token, token_file = resolve_token(args.host, args.token or os.environ.get("MPRL_SERVE_TOKEN"), args.token_file)
    control_token, control_file = resolve_control_token(token, args.token_file)
    settings = ServeSettings(storage_path=str(storage.resolve()), host=args.host, port=args.port, video_steps=args.video_steps,
                             max_batch=args.max_batch, max_episodes=args.max_episodes, proxy_port=args.proxy_port,
                             max_videos_per_policy=args.max_videos_per_policy, max_render_jobs=args.max_render_jobs, token=token,
                             control_token=control_token)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if address:  # a cluster started elsewhere: its Serve settings are its own (proxy on --port)
        ray.init(address=address, log_to_driver=False)
    else:
        check_ports(settings, direct=True)  # before the seconds Ray takes to start
        enable_direct_ingress(args.port)
        ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        url = start(settings)
        print(f"mprl serve: {url}/  (API {url}/api/v1, runs from {settings.storage_path}); Ctrl-C stops it", flush=True)
        if token_file is not None:
            print(f"mprl serve: bound to {args.host}, so every request needs this token (stored in {token_file}, mode 600):\n"
                  f"  {token}\n  send `Authorization: Bearer TOKEN`; open the page once as {url}/?token=TOKEN", flush=True)
        elif token:
            print(f"mprl serve: every request needs the token given (`Authorization: Bearer TOKEN`; the page: {url}/?token=TOKEN)", flush=True)
        else:
            print(f"mprl serve: launching, stopping, resuming and building need this token (stored in {control_file}, mode 600), "
                  f"sent as the header `X-Mprl-Token: TOKEN`:\n  {control_token}\n  the workbench page: open {url}/#token=TOKEN once "
                  f"(or paste it on the page)", flush=True)
        stop.wait()
    finally:
        print("mprl serve: shutting down", flush=True)
        if address:  # a shared cluster: remove the app; our own local Ray goes down whole (faster)
            serve.shutdown()
        ray.shutdown()
    return 0


def _local_storage(storage_path: str) -> None:
    from mprl.storage import is_uri

    if is_uri(storage_path):
        raise MprlError(f"--storage-path {storage_path}: the Serve app and `mprl video` read runs from a local or shared folder "
                        f"(they also record videos in the lineage). Copy a run from remote storage first: "
                        f"`mprl pull RUN --storage-path {storage_path} --to ./mprl_results`, then `--storage-path ./mprl_results`.")


def _checkpoint_from_lineage(ref: str, storage_path: str) -> tuple[str, Path | None, str | None]:
    """A path as is, or a lineage checkpoint id ('ck-…') of a local run → (path, run folder, id)."""
    from mprl.lineage.store import find_checkpoint, is_checkpoint_id

    if is_checkpoint_id(ref) and not Path(ref).exists():
        _local_storage(storage_path)  # the video is recorded in that run's lineage
    path, run_dir, cid = find_checkpoint(ref, storage_path)
    return path, (Path(run_dir) if run_dir else None), cid


def cmd_video(args: argparse.Namespace) -> int:
    from mprl.video import record_video

    path, run_dir, cid = _checkpoint_from_lineage(args.checkpoint, args.storage_path)
    out = record_video(path, args.output, args.env, steps=args.steps, seed=args.seed, width=args.width, height=args.height)
    print(f"{out['path']}: {out['steps']} steps of {out['env']}, first episode return {out['episode_return']:.1f}, {out['seconds']:.1f} s")
    if run_dir is not None:
        from mprl.lineage import open_lineage
        from mprl.lineage.writer import record_video as record_in_lineage

        with open_lineage(run_dir) as store:
            run = store.run()
        if run["status"] in ("running", "created") and os.environ.get("RAY_ADDRESS"):
            import ray

            from mprl.quiet import quiet_ray_startup

            quiet_ray_startup()
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)  # to hand the record to the run's scheduler
        vid, via = record_in_lineage(run_dir, run["run_id"], cid, out["path"], env=out["env"], steps=out["steps"],
                                     episode_return=out["episode_return"], seconds=out["seconds"], source="cli")
        print(f"recorded in the lineage of {run_dir.name} as {vid}" + (" (by its scheduler)" if via == "scheduler" else ""))
    return 0


def add_subparser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="serve policies of the lineage over HTTP (Ray Serve) with the web page")
    s.add_argument("--storage-path", default="./mprl_results", help="folder whose runs are served (default ./mprl_results)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port of the app (default 8000)")
    s.add_argument("--proxy-port", type=int, default=None, help="port of Serve's own HTTP proxy, which also answers (default: --port + 1)")
    s.add_argument("--video-steps", type=int, default=1000, help="frames of a video made on demand from the page")
    s.add_argument("--max-batch", type=int, default=1024, help="most observations in one act request")
    s.add_argument("--max-episodes", type=int, default=20, help="most episodes in one rollouts request")
    s.add_argument("--token", help="access token every request must carry (default: none on loopback; generated off loopback). Also MPRL_SERVE_TOKEN")
    s.add_argument("--token-file", default=None, help="where a generated token is stored, mode 600 (default ~/.mprl/serve-token)")
    s.add_argument("--max-videos-per-policy", type=int, default=16, help="videos made on demand per policy (identical requests reuse theirs)")
    s.add_argument("--max-render-jobs", type=int, default=2, help="videos queued or rendering at once; more are answered 429")
    s.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else an embedded local Ray)")
    s.add_argument("--num-cpus", type=int, default=None, help="CPUs of the embedded local Ray")
    s.set_defaults(func=cmd_serve)

    v = sub.add_parser("video", help="record a behaviour video (mp4) of a checkpoint's deterministic policy")
    v.add_argument("checkpoint", help="checkpoint folder, or a lineage checkpoint id ('ck-…', with --storage-path)")
    v.add_argument("-o", "--output", required=True, help="output .mp4 path")
    v.add_argument("--env", help="environment id (default: the checkpoint's; a variant with the same spaces works)")
    v.add_argument("--steps", type=int, default=1000, help="frames; episodes restart when done (default 1000)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--width", type=int, default=320)
    v.add_argument("--height", type=int, default=320)
    v.add_argument("--storage-path", default="./mprl_results", help="where to look up 'ck-…' ids")
    v.set_defaults(func=cmd_video)

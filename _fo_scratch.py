import collections
import sys

from benchmarks import bench_scale
from benchmarks.scale.scenarios import Bench
from testsupport import environment, sandbox, throttle


def main() -> None:
    options = bench_scale.parse_args(["--only", "failover", *sys.argv[1:]])
    with environment.isolated():
        clock = throttle.SimClock()
        with throttle.Server(options.rates, clock, options.latency) as server, sandbox.aws_rules():
            run = Bench(server, clock, options).failover()
    st = run.stats
    print("end", run.end, "first modify", st.first_pass.get("ModifyTrafficMirrorSession"), "last", st.last_pass.get("ModifyTrafficMirrorSession"))
    print(sorted(collections.Counter(int(t) for t in st.write_times).items()))
    print({a: (st.passed[a], round(st.moto_seconds.get(a, 0), 2), round(st.last_pass.get(a, 0), 2)) for a in st.calls})
    for r in run.replies:
        print(r.started_at, r.ended_at, r.result if not isinstance(r.result, dict) else r.result.get("batchItemFailures"), r.error)


if __name__ == "__main__":
    main()

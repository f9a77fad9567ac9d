// Command bench measures oci2 against the tools people use today on the
// ../shared/corpus trees, in six parts (-only picks some):
//
//   - store: bytes, objects, time and peak memory of each scenario stored
//     with oci2, layered tar+gzip and tar+zstd images, restic, borg, casync;
//   - timing: oci2 create (cold, warm) and unpack against tar with gzip and
//     zstd, and umoci unpack;
//   - exporter: type=oci2 against BuildKit's type=oci (gzip, zstd, estargz)
//     and type=image on a fresh buildkitd-oci2 each, cold and after a
//     one-file change, and a small change on a large base image;
//   - registry: push and pull through a real registry against the same
//     trees as layered tar+gzip images;
//   - startup (root): time to a container's first output, oci2 pull +
//     unpack against oci2 mount, local and lazy from a registry, with runc;
//   - containerd (root): the same with containerd v2.4.2, ctr image pull of
//     the image as gzip against oci2 containerd import with oci2-snapshotter.
//
// The startup parts put the registry behind a proxy adding a round trip
// time to each request (no netem here); -smoke leaves them out.
//
// With -oci2-baseline PATH (an older oci2 build) the store and timing parts
// also run that binary as "oci2 (before)", interleaved with the others, and
// the report compares the two row by row.
//
// Times are medians of interleaved runs with min and max. It writes
// bench/results/<date>.md and a PNG chart (gonum/plot) and prints the
// tables, with the targets of issues 2 to 4. It never fails on a number; it
// exits non-zero only when a command it runs fails.
//
//	go run ./bench -bin bin -corpus /var/cache/oci2-corpus   # full run (make bench)
//	go run ./bench -bin bin -smoke                           # < 1 min (make bench-smoke)
//	go run ./bench -bin bin -only store,timing -oci2-baseline /tmp/OLDREV/oci2
package main

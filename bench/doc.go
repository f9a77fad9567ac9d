// Command bench measures oci2 against the tools people use today (layered
// tar+gzip and tar+zstd images, restic, borg, casync, umoci) on the
// ../shared/corpus trees: bytes stored per scenario, and medians of
// interleaved timings with peak memory. It writes bench/results/<date>.md
// and an SVG chart and prints the tables. It never fails on a number; it
// exits non-zero only when a command it runs fails.
//
//	go run ./bench -corpus /var/cache/oci2-corpus      # full run (make bench)
//	go run ./bench -smoke                              # one small tree (make bench-smoke)
package main

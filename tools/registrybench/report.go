package main

import (
	"fmt"
	"time"
)

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func report(c config, o, l numbers) {
	fmt.Printf("## Registry transfer: %s -> %s (base %s), distribution registry on loopback\n\n", c.v1, c.v2, c.base)
	fmt.Println("| | oci2 | layered tar+gzip (base + top layer) | oci2 / layered |")
	fmt.Println("|---|---:|---:|---:|")
	row := func(what string, a, b int64, f func(int64) string) {
		ratio := "-"
		if b > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(a)/float64(b))
		}
		fmt.Printf("| %s | %s | %s | %s |\n", what, f(a), f(b), ratio)
	}
	num := func(n int64) string { return fmt.Sprint(n) }
	row("push v1: bytes sent", o.pushV1.BytesSent, l.pushV1.BytesSent, mb)
	row("push v2 after v1: bytes sent", o.pushV2.BytesSent, l.pushV2.BytesSent, mb)
	row("push v2 after v1: requests", o.pushV2.Requests, l.pushV2.Requests, num)
	row("pull v2 into a store with v1: bytes received", o.pullV2.BytesReceived, l.pullV2.BytesReceived, mb)
	row("pull v2 into a store with v1: requests", o.pullV2.Requests, l.pullV2.Requests, num)
	row("pull v2 into an empty store: bytes received", o.wholePull.BytesReceived, l.wholePull.BytesReceived, mb)
	row("pull v2 into an empty store: requests", o.wholePull.Requests, l.wholePull.Requests, num)
	row("pull + unpack/extract v2 into an empty store: ms", o.wholeTime.Milliseconds(), l.wholeTime.Milliseconds(), num)
	fmt.Printf("\noci2 push v2: %d of %d blobs uploaded. %s. Whole pull of v2: %d ms pull, %d ms unpack.\n",
		o.newBlobs, o.blobs, o.extra, o.pullTime.Milliseconds(), (o.wholeTime - o.pullTime).Milliseconds())
	fmt.Printf("Requests count every HTTP round trip (pings and token requests included); bytes are payload bytes. %s\n",
		time.Now().UTC().Format("2006-01-02"))
}

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestCtrTargets: F is judged against E at the same RTT, at most 0.5x at
// 20 ms and 1.2x at 0 ms; a mode without samples is "not measured".
func TestCtrTargets(t *testing.T) {
	row := func(rtt time.Duration, mode string, med time.Duration) startupRow {
		return startupRow{RTT: rtt, Mode: mode, Stats: stats{N: 1, Median: med}}
	}
	ms := time.Millisecond
	got := ctrTargets([]startupRow{row(0, "E", 1000*ms), row(0, "F", 1300*ms), row(20*ms, "E", 2000*ms), row(20*ms, "F", 800*ms)})
	for _, want := range []string{"0.5x of E at 20 ms: 0.40x, met", "1.2x of E at 0 ms: 1.30x, missed"} {
		if !strings.Contains(got, want) {
			t.Errorf("ctrTargets = %q, want it to contain %q", got, want)
		}
	}
	failed := startupRow{RTT: 20 * ms, Mode: "F"} // no sample passed
	got = ctrTargets([]startupRow{row(20*ms, "E", 2000*ms), failed})
	if !strings.Contains(got, "0.5x of E at 20 ms: not measured") {
		t.Errorf("ctrTargets without F = %q, want \"not measured\"", got)
	}
}

// TestNetsimCounts: the proxy counts requests and answer bytes, and
// Counts resets them.
func TestNetsimCounts(t *testing.T) {
	body := strings.Repeat("x", 100<<10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer up.Close()
	ns, err := startNetsim(strings.TrimPrefix(up.URL, "http://"), time.Millisecond, 1e9)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	for range 2 {
		resp, err := http.Get("http://" + ns.Host + "/v2/x")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != int64(len(body)) {
			t.Fatalf("got %d bytes through the proxy, want %d", n, len(body))
		}
	}
	if req, b := ns.Counts(); req != 2 || b != 2*int64(len(body)) {
		t.Errorf("Counts = %d requests, %d bytes; want 2, %d", req, b, 2*len(body))
	}
	if req, b := ns.Counts(); req != 0 || b != 0 {
		t.Errorf("Counts after Counts = %d, %d; want 0, 0", req, b)
	}
}

// TestParseWorkloads: -startup-extra is TREE=COMMAND items separated by
// semicolons; an item without a tree or a command is dropped.
func TestParseWorkloads(t *testing.T) {
	got := parseWorkloads(`debian-build=gcc --version; =x;minbase=;go-app=/app -v`)
	want := []workload{{tree: "debian-build", cmd: "gcc --version"}, {tree: "go-app", cmd: "/app -v"}}
	if len(got) != len(want) {
		t.Fatalf("parseWorkloads = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].tree != want[i].tree || got[i].cmd != want[i].cmd {
			t.Errorf("workload %d = %q %q, want %q %q", i, got[i].tree, got[i].cmd, want[i].tree, want[i].cmd)
		}
	}
}

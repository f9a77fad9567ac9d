package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/store/registry"
	"github.com/oci2/oci2/transfer"
)

// remoteFlags are the registry flags of push, pull and copy.
type remoteFlags struct {
	insecure  bool
	plainHTTP bool
	caCerts   []string
	jobs      int
	chunkSize int64
	idle      time.Duration
}

// envIdleTimeout is the environment's default for --idle-timeout.
const envIdleTimeout = "OCI2_IDLE_TIMEOUT"

func (f *remoteFlags) add(cmd *cobra.Command, upload bool) {
	fl := cmd.Flags()
	fl.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP and unverified TLS for a registry that is not on loopback")
	fl.BoolVar(&f.plainHTTP, "plain-http", false, "talk plain HTTP to the registry (loopback registries get it without asking)")
	fl.StringArrayVar(&f.caCerts, "ca-cert", nil, "PEM file of a CA to trust besides the system's (repeatable)")
	fl.IntVar(&f.jobs, "jobs", 4, "requests in flight at most")
	fl.DurationVar(&f.idle, "idle-timeout", 0, fmt.Sprintf("abandon a request when the registry does not answer, stops reading the upload, "+
		"or sends less than 4 KiB of an answer in this long; it is retried, then the command fails naming the registry and blob "+
		"(0: $%s, else %v)", envIdleTimeout, registry.DefaultIdleTimeout))
	if upload {
		fl.Int64Var(&f.chunkSize, "chunk-size", 0, "upload blobs in chunks of this many bytes (0: one request per blob)")
	}
}

// options builds the registry options (credentials come from the docker
// config and its credential helpers).
func (f *remoteFlags) options(warn func(string)) (registry.Options, error) {
	o := registry.Options{
		Insecure: f.insecure, PlainHTTP: f.plainHTTP, Jobs: f.jobs, ChunkSize: f.chunkSize,
		Stats: &registry.Stats{}, Warn: warn, UserAgent: "oci2",
	}
	if f.jobs < 1 {
		return o, usagef("--jobs %d: want at least 1", f.jobs)
	}
	o.IdleTimeout = f.idle
	if s := os.Getenv(envIdleTimeout); f.idle == 0 && s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return o, usagef("$%s=%q: want a positive duration (30s, 2m)", envIdleTimeout, s)
		}
		o.IdleTimeout = d
	}
	if o.IdleTimeout < 0 {
		return o, usagef("--idle-timeout %v: want a positive duration", f.idle)
	}
	if len(f.caCerts) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, p := range f.caCerts {
			b, err := os.ReadFile(p)
			if err != nil {
				return o, fmt.Errorf("--ca-cert: %w", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return o, usagef("--ca-cert %s: no PEM certificate in it", p)
			}
		}
		o.RootCAs = pool
	}
	return o, nil
}

// transferProgress draws a transfer's phases on b.
func transferProgress(b *bar) func(transfer.Progress) {
	return func(p transfer.Progress) {
		switch p.Phase {
		case "upload", "fetch", "copy":
			b.update(fmt.Sprintf("%s (%d/%d, %d requests)", p.Phase, p.Done, p.Total, p.Requests), p.Bytes, p.BytesTotal, true)
		default:
			b.update(p.Phase, p.Done, p.Total, false)
		}
	}
}

// warner prints warnings to stderr, each distinct message once.
func warner() func(string) {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if !seen[s] {
			seen[s] = true
			warnf(os.Stderr, "%s", s)
		}
	}
}

// printTransfer prints a one-line summary of a transfer.
// reportTransfer prints a transfer's result: JSON with --json, else a
// summary line.
func (a *app) reportTransfer(verb string, r *transfer.Result) error {
	if a.jsonOut {
		return printJSON(r)
	}
	printTransfer(verb, r)
	return nil
}

func printTransfer(verb string, r *transfer.Result) {
	fmt.Println(r.Digest)
	var parts []string
	if r.BlobsUploaded+r.BlobsMounted+r.BlobsPresent > 0 {
		parts = append(parts, fmt.Sprintf("%d blobs sent (%s), %d mounted, %d already there",
			r.BlobsUploaded, humanBytes(r.BytesUploaded), r.BlobsMounted, r.BlobsPresent))
	}
	if r.FramesFetched+r.FramesRebuilt+r.FramesPresent > 0 {
		parts = append(parts, fmt.Sprintf("%d frames fetched (%s), %d rebuilt, %d already stored",
			r.FramesFetched, humanBytes(r.BytesFetched), r.FramesRebuilt, r.FramesPresent))
	}
	parts = append(parts, fmt.Sprintf("%d requests, %s sent, %s received",
		r.Requests, humanBytes(r.BytesSent), humanBytes(r.BytesReceived)))
	fmt.Fprintf(os.Stderr, "%s %s: %s\n", verb, r.Ref, strings.Join(parts, "; "))
}

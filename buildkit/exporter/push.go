package exporter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/go-units"
	bkexporter "github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/progress"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/store/registry"
	"github.com/oci2/oci2/transfer"
)

// pushFinalize returns the export's finalize step for push=true: BuildKit
// calls it after every exporter has stored its result (the image exporter
// pushes there too), under the exporter's vertex. It pushes the stored index
// idx to every name, one after the other.
func (i *instance) pushFinalize(idx ocispec.Descriptor, sessionID string) bkexporter.FinalizeFunc {
	names := append([]string(nil), i.attrs.Names...)
	return func(ctx context.Context) error {
		for _, n := range names {
			if err := i.push(ctx, idx, n, sessionID); err != nil {
				return fmt.Errorf("oci2 exporter: pushing %s: %w", n, err)
			}
		}
		return nil
	}
}

// push sends the image idx of the store to name (host/repo:tag) through
// transfer.Push: only the blobs the repository lacks are sent, packs are
// rebuilt from the store's frames on the way.
func (i *instance) push(ctx context.Context, idx ocispec.Descriptor, name, sessionID string) error {
	st := i.exp.opt.State.Store
	// The image is named in the store, but a concurrent export may rename
	// it and a collection remove it: the lease keeps it while it is read.
	release, err := st.Lease(ctx)
	if err != nil {
		return fmt.Errorf("lease on store: %w", err)
	}
	defer release()

	repo, err := repositoryOf(name)
	if err != nil {
		return err
	}
	rt, err := newSessionTransport(i.exp.opt.SessionManager, sessionID, i.exp.opt.RegistryHosts, repo, i.attrs.Insecure)
	if err != nil {
		return err
	}
	pr := newPushProgress(ctx, name)
	res, err := transfer.Push(ctx, st, idx, name, transfer.PushOptions{
		Options: transfer.Options{
			Registry: registry.Options{
				AuthTransport: rt,
				UserAgent:     "oci2-buildkit",
				IdleTimeout:   i.attrs.IdleTimeout,
			},
			Progress: pr.update,
			Warn:     func(msg string) { pr.log(msg) },
		},
		Remotes:  i.exp.opt.Remotes,
		ByDigest: i.attrs.PushByDigest,
	})
	pr.close(res, err)
	if err != nil {
		return err
	}
	if r := i.exp.opt.Remotes; r != nil {
		if err := r.Save(); err != nil {
			bklog.G(ctx).Warnf("oci2 exporter: recording the push: %v", err)
		}
	}
	return nil
}

// repositoryOf strips the tag of a normalized name.
func repositoryOf(name string) (string, error) {
	for j := len(name) - 1; j >= 0; j-- {
		switch name[j] {
		case ':':
			return name[:j], nil
		case '/':
			return name, nil
		}
	}
	return "", fmt.Errorf("name %q has no repository", name)
}

// pushProgress shows a push in the client's progress display: one status
// per phase (blobs checked, bytes uploaded), then a summary line.
type pushProgress struct {
	pw      progress.Writer
	name    string
	started time.Time
	last    time.Time
	phase   string
	bytes   bool   // the phase shows bytes
	id      string // current phase's status id
	st      progress.Status
}

func newPushProgress(ctx context.Context, name string) *pushProgress {
	pw, _, _ := progress.NewFromContext(ctx)
	return &pushProgress{pw: pw, name: name, started: time.Now()}
}

// update is transfer's Progress callback (serialized by transfer); at most
// ten statuses a second per phase.
func (p *pushProgress) update(tp transfer.Progress) {
	now := time.Now()
	if tp.Phase != p.phase {
		p.complete(now)
		p.phase = tp.Phase
		// Clients show Current/Total as bytes: a phase that moves no
		// payload (check, manifests) names its count instead.
		p.bytes = tp.BytesTotal > 0
		p.id = fmt.Sprintf("pushing %s: %s", p.name, tp.Phase)
		if !p.bytes {
			p.id += fmt.Sprintf(" (%d blobs)", tp.Total)
		}
		p.st = progress.Status{Action: tp.Phase, Started: &now}
	} else if now.Sub(p.last) < 100*time.Millisecond && tp.Bytes < tp.BytesTotal {
		return
	}
	p.last = now
	if p.bytes {
		p.st.Current, p.st.Total = int(tp.Bytes), int(tp.BytesTotal)
	}
	p.pw.Write(p.id, p.st)
}

// complete ends the current phase's status.
func (p *pushProgress) complete(now time.Time) {
	if p.id == "" {
		return
	}
	p.st.Completed = &now
	p.pw.Write(p.id, p.st)
	p.id, p.phase = "", ""
}

// log shows a warning of the transfer (a retry, a refused mount).
func (p *pushProgress) log(msg string) {
	now := time.Now()
	p.pw.Write(fmt.Sprintf("pushing %s: %s", p.name, msg), progress.Status{Started: &now, Completed: &now})
}

// close ends the statuses and writes the summary: what was sent, what the
// registry already had.
func (p *pushProgress) close(res *transfer.Result, err error) {
	now := time.Now()
	p.complete(now)
	if err == nil && res != nil {
		msg := fmt.Sprintf("pushed %s@%s: %d blobs uploaded (%s), %d present, %d mounted; %d requests, %s sent",
			p.name, res.Digest, res.BlobsUploaded, units.HumanSize(float64(res.BytesUploaded)),
			res.BlobsPresent, res.BlobsMounted, res.Requests, units.HumanSize(float64(res.BytesSent)))
		p.pw.Write(msg, progress.Status{Started: &p.started, Completed: &now})
	} else if errors.Is(err, registry.ErrUnauthorized) {
		p.log("unauthorized: the credentials come from the client's docker config (docker login on the machine running buildctl or buildx)")
	}
	p.pw.Close()
}

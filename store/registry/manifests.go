package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/walk"
	"github.com/oci2/oci2/store"
)

// MaxManifestSize is the largest manifest or index read or written
// (registries commonly refuse more than 4 MiB).
const MaxManifestSize = format.MaxManifestSize

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, format.MediaTypeDockerList, format.MediaTypeDockerManifest,
}, ", ")

// IsManifestType reports whether mt is an image manifest or index type.
func IsManifestType(mt string) bool { return walk.KindOf(mt) != walk.Other }

func (r *Repo) manifestRequest(ctx context.Context, method, ref string) (*http.Response, error) {
	return r.c.do(ctx, call{method: method, url: r.manifestURL(ref),
		header: http.Header{"Accept": {manifestAccept}}, want: []int{http.StatusOK}})
}

// HeadManifest returns the descriptor of the manifest or index ref (a tag
// or a digest) names.
func (r *Repo) HeadManifest(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	resp, err := r.manifestRequest(ctx, http.MethodHead, ref)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s:%s: %w", r.name, ref, err)
	}
	resp.Body.Close()
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s:%s: registry sent no valid Docker-Content-Digest: %w", r.name, ref, ErrRegistry)
	}
	return ocispec.Descriptor{MediaType: contentType(resp), Digest: d, Size: resp.ContentLength}, nil
}

// GetManifest reads the manifest or index ref (a tag or a digest) names,
// verifying it against the digest (ref's, or the one the registry names).
func (r *Repo) GetManifest(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	for attempt := 0; ; attempt++ {
		desc, b, err := r.getManifestOnce(ctx, ref)
		if err == nil || !retryAgain(err) || ctx.Err() != nil || attempt >= r.o.Retries {
			return desc, b, err
		}
		if err := sleep(ctx, backoff(r.o, attempt, 0)); err != nil {
			return ocispec.Descriptor{}, nil, err
		}
	}
}

func (r *Repo) getManifestOnce(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	what := r.name + ":" + ref
	byDigest := strings.Contains(ref, ":")
	if byDigest {
		what = r.name + "@" + ref
		if err := store.CheckDigest(digest.Digest(ref)); err != nil {
			return ocispec.Descriptor{}, nil, err
		}
	}
	resp, err := r.manifestRequest(ctx, http.MethodGet, ref)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %d bytes, over the %d byte limit: %w",
			what, resp.ContentLength, MaxManifestSize, store.ErrTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", what, err)
	}
	if len(b) > MaxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: over the %d byte limit: %w", what, MaxManifestSize, store.ErrTooLarge)
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: truncated answer: %d of %d bytes: %w",
			what, len(b), resp.ContentLength, store.ErrSizeMismatch)
	}
	got := digest.FromBytes(b)
	want := digest.Digest(resp.Header.Get("Docker-Content-Digest"))
	if byDigest {
		want = digest.Digest(ref)
	}
	if want != "" && got != want {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: content hashes to %s, want %s: %w",
			what, got, want, store.ErrDigestMismatch)
	}
	mt := contentType(resp)
	if !IsManifestType(mt) {
		mt = walk.Sniff(b)
	}
	r.isMan.Store(got, true)
	return ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(b))}, b, nil
}

// PutManifest stores b (of media type mt) under ref: a tag, or its digest.
// The registry accepts it only when every blob and manifest it references is
// in the repository (else the error wraps store.ErrNotFound).
func (r *Repo) PutManifest(ctx context.Context, ref, mt string, b []byte) (ocispec.Descriptor, error) {
	d := digest.FromBytes(b)
	desc := ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
	if len(b) > MaxManifestSize {
		return desc, fmt.Errorf("manifest %s: %d bytes, over the %d byte limit registries accept: %w",
			d, len(b), MaxManifestSize, store.ErrTooLarge)
	}
	if strings.Contains(ref, ":") && ref != d.String() {
		return desc, fmt.Errorf("manifest %s: cannot be stored as %s: %w", d, ref, store.ErrDigestMismatch)
	}
	resp, err := r.c.do(ctx, call{
		method: http.MethodPut, url: r.manifestURL(ref),
		header: http.Header{"Content-Type": {mt}},
		body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		length: int64(len(b)),
		want:   []int{http.StatusCreated, http.StatusOK, http.StatusAccepted},
	})
	if err != nil {
		return desc, fmt.Errorf("putting manifest %s as %s:%s: %w", d, r.name, ref, err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return desc, fmt.Errorf("putting manifest %s: registry stored it as %s: %w", d, got, store.ErrDigestMismatch)
	}
	r.isMan.Store(d, true)
	return desc, nil
}

// DeleteManifest removes a tag (or, given a digest, the manifest and every
// tag naming it). ErrNotFound when missing; errors.ErrUnsupported when the
// registry does not allow deletes.
func (r *Repo) DeleteManifest(ctx context.Context, ref string) error {
	resp, err := r.c.do(ctx, call{method: http.MethodDelete, url: r.manifestURL(ref),
		want: []int{http.StatusAccepted, http.StatusOK, http.StatusNoContent}})
	if err != nil {
		return fmt.Errorf("deleting %s:%s: %w", r.name, ref, err)
	}
	resp.Body.Close()
	return nil
}

// Tags lists the repository's tags (none for a repository that does not
// exist yet), following pagination.
func (r *Repo) Tags(ctx context.Context) ([]string, error) {
	var tags []string
	next := r.url("tags/list?n=1000")
	for next != "" {
		resp, err := r.c.do(ctx, call{method: http.MethodGet, url: next, want: []int{http.StatusOK}})
		if errors.Is(err, store.ErrNotFound) && len(tags) == 0 {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing tags of %s: %w", r.name, err)
		}
		var page struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&page)
		link := resp.Header.Get("Link")
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("listing tags of %s: %w", r.name, err)
		}
		tags = append(tags, page.Tags...)
		next = ""
		if u := parseNextLink(link); u != "" {
			if next, err = resolveLocation(r.url("tags/list"), u); err != nil {
				return nil, err
			}
		}
	}
	return tags, nil
}

// parseNextLink extracts the URL of `<url>; rel="next"`.
func parseNextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		u, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if ok && strings.Contains(params, `rel="next"`) {
			return strings.Trim(strings.TrimSpace(u), "<>")
		}
	}
	return ""
}

func contentType(resp *http.Response) string {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

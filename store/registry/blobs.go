package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

// Stat returns the size of blob d (or of the manifest d), or ErrNotFound.
func (r *Repo) Stat(ctx context.Context, d digest.Digest) (store.Info, error) {
	if err := store.CheckDigest(d); err != nil {
		return store.Info{}, err
	}
	resp, err := r.getOrHead(ctx, http.MethodHead, d, nil)
	if err != nil {
		return store.Info{}, err
	}
	resp.Body.Close()
	if resp.ContentLength < 0 {
		return store.Info{}, fmt.Errorf("blob %s: registry sent no Content-Length: %w", d, ErrRegistry)
	}
	return store.Info{Digest: d, Size: resp.ContentLength}, nil
}

// getOrHead asks the blob endpoint for d, then the manifest endpoint when
// the registry does not know d as a blob.
func (r *Repo) getOrHead(ctx context.Context, method string, d digest.Digest, header http.Header) (*http.Response, error) {
	if _, ok := r.isMan.Load(d); ok {
		return r.manifestRequest(ctx, method, d.String())
	}
	resp, err := r.c.do(ctx, call{method: method, url: r.blobURL(d), header: header,
		want: []int{http.StatusOK, http.StatusPartialContent}})
	if err == nil {
		if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
			resp.Body.Close()
			return nil, fmt.Errorf("blob %s: registry answered for %s: %w", d, got, store.ErrDigestMismatch)
		}
		return resp, nil
	}
	if !errors.Is(err, store.ErrNotFound) || header != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	resp, merr := r.manifestRequest(ctx, method, d.String())
	if merr != nil {
		if errors.Is(merr, store.ErrNotFound) {
			return nil, fmt.Errorf("blob %s: %w", d, err)
		}
		return nil, fmt.Errorf("blob %s: %w", d, merr)
	}
	r.isMan.Store(d, true)
	return resp, nil
}

// ReadBlob returns the verified blob d; with maxSize > 0 a larger blob fails
// with ErrTooLarge before its body is read.
func (r *Repo) ReadBlob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	return r.readBlob(ctx, d, -1, maxSize)
}

// Fetch is ReadBlob of a blob whose size is known (from a descriptor): a
// blob of another size is reported as ErrSizeMismatch (a truncated or
// padded answer, or a descriptor that lies).
func (r *Repo) Fetch(ctx context.Context, d digest.Digest, size, maxSize int64) ([]byte, error) {
	if size < 0 {
		return nil, fmt.Errorf("blob %s: negative size %d", d, size)
	}
	if maxSize > 0 && size > maxSize {
		return nil, fmt.Errorf("blob %s: size %d over the %d byte limit: %w", d, size, maxSize, store.ErrTooLarge)
	}
	return r.readBlob(ctx, d, size, maxSize)
}

// readBlob GETs d (again when the connection drops mid-body) and verifies
// its size (when want >= 0) and digest.
func (r *Repo) readBlob(ctx context.Context, d digest.Digest, want, maxSize int64) ([]byte, error) {
	if err := store.CheckDigest(d); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		b, err := r.readBlobOnce(ctx, d, want, maxSize)
		if err == nil || !retryAgain(err) || ctx.Err() != nil || attempt >= r.o.Retries {
			return b, err
		}
		r.o.Warn(fmt.Sprintf("%v; retrying", err)) // err names the blob
		if err := sleep(ctx, backoff(r.o, attempt, 0)); err != nil {
			return nil, err
		}
	}
}

func (r *Repo) readBlobOnce(ctx context.Context, d digest.Digest, want, maxSize int64) ([]byte, error) {
	resp, err := r.getOrHead(ctx, http.MethodGet, d, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	n := resp.ContentLength
	if maxSize > 0 && n > maxSize {
		return nil, fmt.Errorf("blob %s: %d bytes, over the %d byte limit: %w", d, n, maxSize, store.ErrTooLarge)
	}
	if want >= 0 && n >= 0 && n != want {
		return nil, fmt.Errorf("blob %s: registry announces %d bytes, descriptor says %d: %w", d, n, want, store.ErrSizeMismatch)
	}
	limit := maxSize
	if limit <= 0 {
		limit = 1 << 40
	}
	var buf bytes.Buffer
	if n > 0 {
		buf.Grow(int(min(n, 64<<20)))
	}
	got, err := io.Copy(&buf, io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: reading body after %d bytes: %w", d, got, err)
	}
	b := buf.Bytes()
	switch {
	case maxSize > 0 && got > maxSize:
		return nil, fmt.Errorf("blob %s: more than %d bytes: %w", d, maxSize, store.ErrTooLarge)
	case n >= 0 && got != n:
		return nil, fmt.Errorf("blob %s: truncated answer: %d of %d bytes: %w", d, got, n, store.ErrSizeMismatch)
	case want >= 0 && got != want:
		return nil, fmt.Errorf("blob %s: got %d bytes, descriptor says %d: %w", d, got, want, store.ErrSizeMismatch)
	}
	if err := store.VerifyBytes(d, b); err != nil {
		return nil, fmt.Errorf("registry %s: %w", r.reg.RegistryStr(), err)
	}
	return b, nil
}

// Open streams blob d; the reader fails with ErrDigestMismatch at EOF when
// the bytes do not match.
func (r *Repo) Open(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	if err := store.CheckDigest(d); err != nil {
		return nil, err
	}
	resp, err := r.getOrHead(ctx, http.MethodGet, d, nil)
	if err != nil {
		return nil, err
	}
	return store.VerifyReader(resp.Body, d, resp.ContentLength), nil
}

// ReadRange returns bytes [offset, offset+length) of blob d, unverified.
func (r *Repo) ReadRange(ctx context.Context, d digest.Digest, offset, length int64) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		b, err := r.readRangeOnce(ctx, d, offset, length)
		if err == nil || !retryAgain(err) || errors.Is(err, io.ErrUnexpectedEOF) && !isShortBody(err) ||
			ctx.Err() != nil || attempt >= r.o.Retries {
			return b, err
		}
		r.o.Warn(fmt.Sprintf("%v; retrying", err)) // err names the blob
		if err := sleep(ctx, backoff(r.o, attempt, 0)); err != nil {
			return nil, err
		}
	}
}

func (r *Repo) readRangeOnce(ctx context.Context, d digest.Digest, offset, length int64) ([]byte, error) {
	rc, err := r.OpenRange(ctx, d, offset, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, length)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, err
	}
	return b, nil
}

// OpenRange streams bytes [offset, offset+length) of blob d, unverified. A
// range past the end of the blob fails with io.ErrUnexpectedEOF. When the
// registry ignores the Range header (answers 200 with the whole blob) the
// bytes before offset are read and discarded, IgnoresRange reports it and
// Options.Warn is told once.
func (r *Repo) OpenRange(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	if err := store.CheckDigest(d); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("blob %s: invalid range [%d, +%d)", d, offset, length)
	}
	if length == 0 {
		info, err := r.Stat(ctx, d)
		if err != nil {
			return nil, err
		}
		if offset > info.Size {
			return nil, fmt.Errorf("blob %s: offset %d past its %d bytes: %w", d, offset, info.Size, io.ErrUnexpectedEOF)
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	end := offset + length // exclusive
	h := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", offset, end-1)}}
	resp, err := r.getOrHead(ctx, http.MethodGet, d, h)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("blob %s: range [%d, %d) not satisfiable: %w", d, offset, end, err)
		}
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, last, total, perr := parseContentRange(resp.Header.Get("Content-Range"))
		if perr != nil || start != offset {
			resp.Body.Close()
			return nil, fmt.Errorf("blob %s: asked bytes %d-%d, registry sent Content-Range %q: %w",
				d, offset, end-1, resp.Header.Get("Content-Range"), ErrRegistry)
		}
		if last+1 < end {
			resp.Body.Close()
			return nil, fmt.Errorf("blob %s: range [%d, %d) past the end of its %d bytes: %w",
				d, offset, end, total, io.ErrUnexpectedEOF)
		}
		return exactReader(resp.Body, d, length), nil
	default: // 200: the whole blob
		r.rangeIgnored(d)
		if resp.ContentLength >= 0 && end > resp.ContentLength {
			resp.Body.Close()
			return nil, fmt.Errorf("blob %s: range [%d, %d) past the end of its %d bytes: %w",
				d, offset, end, resp.ContentLength, io.ErrUnexpectedEOF)
		}
		if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("blob %s: skipping to offset %d of a whole-blob answer: %w", d, offset, shortBody(err))
		}
		return exactReader(resp.Body, d, length), nil
	}
}

func (r *Repo) rangeIgnored(d digest.Digest) {
	if !r.noRange.Swap(true) {
		r.o.Warn(fmt.Sprintf("%s: %v (answered 200 with the whole blob %s to a range request): reading whole blobs",
			r.reg.RegistryStr(), ErrRangeIgnored, d))
	}
}

// parseContentRange parses "bytes a-b/total" (total may be "*": -1).
func parseContentRange(s string) (start, last, total int64, err error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	rng, tot, ok := strings.Cut(rest, "/")
	a, b, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil {
		return
	}
	if last, err = strconv.ParseInt(b, 10, 64); err != nil {
		return
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return
		}
	}
	if last < start {
		err = fmt.Errorf("bad Content-Range %q", s)
	}
	return
}

// exactReader reads exactly n bytes of rc; fewer is a short-body
// io.ErrUnexpectedEOF naming the blob.
func exactReader(rc io.ReadCloser, d digest.Digest, n int64) io.ReadCloser {
	return &exact{rc: rc, d: d, left: n, n: n}
}

type exact struct {
	rc      io.ReadCloser
	d       digest.Digest
	left, n int64
}

func (e *exact) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	k, err := e.rc.Read(p)
	e.left -= int64(k)
	if err == io.EOF && e.left > 0 || err != nil && err != io.EOF {
		return k, fmt.Errorf("blob %s: truncated answer: %d of %d bytes: %w", e.d, e.n-e.left, e.n, shortBody(err))
	}
	if e.left == 0 {
		return k, nil
	}
	return k, err
}

func (e *exact) Close() error { return e.rc.Close() }

// shortBodyError is a body that ended early (retryable, unlike a range
// that is past the end of a blob).
type shortBodyError struct{ err error }

func (e *shortBodyError) Error() string {
	if e.err == io.EOF || e.err == io.ErrUnexpectedEOF {
		return "unexpected EOF (connection closed early)"
	}
	return e.err.Error()
}
func (e *shortBodyError) Unwrap() []error { return []error{e.err, io.ErrUnexpectedEOF} }

func shortBody(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &shortBodyError{err}
}

func isShortBody(err error) bool {
	var s *shortBodyError
	return errors.As(err, &s)
}

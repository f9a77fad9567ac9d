package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

// Opener opens the content of a blob being uploaded, once per attempt.
type Opener func() (io.ReadCloser, error)

// exists reports whether blob d is in the repository with size (when >= 0).
func (r *Repo) exists(ctx context.Context, d digest.Digest, size int64) (bool, error) {
	resp, err := r.c.do(ctx, call{method: http.MethodHead, url: r.blobURL(d), want: []int{http.StatusOK}})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", d, err)
	}
	resp.Body.Close()
	return size < 0 || resp.ContentLength == size, nil
}

// HasBlob reports whether the blob endpoint has d (manifests do not count).
func (r *Repo) HasBlob(ctx context.Context, d digest.Digest) (bool, error) {
	if err := store.CheckDigest(d); err != nil {
		return false, err
	}
	return r.exists(ctx, d, -1)
}

// PutBlob uploads data as blob d unless the repository has it.
func (r *Repo) PutBlob(ctx context.Context, d digest.Digest, data []byte) error {
	if err := store.VerifyBytes(d, data); err != nil {
		return err
	}
	if ok, err := r.exists(ctx, d, int64(len(data))); err != nil || ok {
		return err
	}
	return r.Upload(ctx, d, int64(len(data)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// WriteBlob uploads the blob read from rc (size -1: unknown) unless the
// repository has it. The stream is spooled to a temporary file and verified
// first, so that a failed upload can be retried.
func (r *Repo) WriteBlob(ctx context.Context, d digest.Digest, size int64, rd io.Reader) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	if ok, err := r.exists(ctx, d, size); err != nil || ok {
		return err
	}
	f, err := os.CreateTemp("", "oci2-upload-*")
	if err != nil {
		return fmt.Errorf("spooling blob %s: %w", d, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	vr := store.VerifyReader(io.NopCloser(rd), d, size)
	n, err := io.Copy(f, vr)
	if err != nil {
		return fmt.Errorf("spooling blob %s: %w", d, err)
	}
	return r.Upload(ctx, d, n, func() (io.ReadCloser, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return io.NopCloser(f), nil
	})
}

// Upload uploads blob d of size bytes (-1: unknown) from open, monolithic or
// in chunks (Options.ChunkSize). The content is verified while it is sent:
// content that is not d fails the upload with ErrDigestMismatch (or
// ErrSizeMismatch) and the registry commits nothing. A failed attempt is
// retried from a new upload session.
func (r *Repo) Upload(ctx context.Context, d digest.Digest, size int64, open Opener) error {
	return r.UploadSession(ctx, "", d, size, open)
}

// UploadSession is Upload starting from an upload session the registry
// already opened (the answer to a refused mount); "" opens one.
func (r *Repo) UploadSession(ctx context.Context, session string, d digest.Digest, size int64, open Opener) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	verified := func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		return store.VerifyReader(rc, d, size), nil
	}
	for attempt := 0; ; attempt++ {
		minChunk := int64(0)
		if session == "" {
			var err error
			if session, minChunk, err = r.startUpload(ctx, nil); err != nil {
				return fmt.Errorf("uploading blob %s: %w", d, err)
			}
		}
		var err error
		if r.o.ChunkSize > 0 {
			err = r.sendChunked(ctx, session, d, max(r.o.ChunkSize, minChunk), verified)
		} else {
			err = r.sendMonolithic(ctx, session, d, size, verified)
		}
		if err == nil {
			return nil
		}
		var he *HTTPError
		retry := retryAgain(err) || errors.As(err, &he) && he.retryable()
		if errors.Is(err, errBody) || !retry || ctx.Err() != nil || attempt >= r.o.Retries {
			return fmt.Errorf("uploading blob %s: %w", d, err)
		}
		r.o.Warn(fmt.Sprintf("uploading blob %s: %v; retrying from a new session", d, err))
		session = ""
		if err := sleep(ctx, backoff(r.o, attempt, 0)); err != nil {
			return err
		}
	}
}

// startUpload opens an upload session (POST), or tries a mount when q holds
// mount parameters. It returns the session URL ("" after a mount that
// succeeded) and the registry's OCI-Chunk-Min-Length.
func (r *Repo) startUpload(ctx context.Context, q url.Values) (string, int64, error) {
	u := r.uploadsURL(q)
	resp, err := r.c.do(ctx, call{method: http.MethodPost, url: u,
		body: func() (io.ReadCloser, error) { return http.NoBody, nil }, length: 0,
		want: []int{http.StatusAccepted, http.StatusCreated}})
	if err != nil {
		return "", 0, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return "", 0, nil
	}
	loc, err := resolveLocation(u, resp.Header.Get("Location"))
	if err != nil {
		return "", 0, err
	}
	minChunk, _ := strconv.ParseInt(resp.Header.Get("OCI-Chunk-Min-Length"), 10, 64)
	return loc, max(minChunk, 0), nil
}

// sendMonolithic PUTs the whole blob to the session.
func (r *Repo) sendMonolithic(ctx context.Context, session string, d digest.Digest, size int64, open Opener) error {
	u, err := withQuery(session, "digest", d.String())
	if err != nil {
		return err
	}
	resp, err := r.c.do(ctx, call{method: http.MethodPut, url: u,
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   open, length: size, want: []int{http.StatusCreated}, once: true})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// sendChunked PATCHes chunks of chunkSize bytes, then PUTs the digest.
func (r *Repo) sendChunked(ctx context.Context, session string, d digest.Digest, chunkSize int64, open Opener) error {
	rc, err := open()
	if err != nil {
		return &bodyError{err}
	}
	defer rc.Close()
	buf := make([]byte, chunkSize)
	var off int64
	for {
		n, rerr := io.ReadFull(rc, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return &bodyError{rerr}
		}
		if n == 0 {
			break
		}
		chunk := buf[:n]
		resp, err := r.c.do(ctx, call{method: http.MethodPatch, url: session,
			header: http.Header{
				"Content-Type":  {"application/octet-stream"},
				"Content-Range": {fmt.Sprintf("%d-%d", off, off+int64(n)-1)},
			},
			body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(chunk)), nil },
			length: int64(n), want: []int{http.StatusAccepted, http.StatusNoContent}, once: true})
		if err != nil {
			return err
		}
		resp.Body.Close()
		if session, err = resolveLocation(session, resp.Header.Get("Location")); err != nil {
			return err
		}
		off += int64(n)
		if rerr != nil {
			break
		}
	}
	// The verifying reader reports a mismatch at EOF.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return &bodyError{err}
	}
	u, err := withQuery(session, "digest", d.String())
	if err != nil {
		return err
	}
	resp, err := r.c.do(ctx, call{method: http.MethodPut, url: u,
		body: func() (io.ReadCloser, error) { return http.NoBody, nil }, length: 0,
		want: []int{http.StatusCreated}, once: true})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Mount asks the registry to mount blob d from repository from (a path on
// the same registry, or a full name). mounted is true when it did; otherwise
// the registry opened an upload session (returned) that UploadSession can
// use, or session is "" and the caller uploads from scratch.
func (r *Repo) Mount(ctx context.Context, d digest.Digest, from string) (mounted bool, session string, err error) {
	if err := store.CheckDigest(d); err != nil {
		return false, "", err
	}
	if p, ok := r.MountPath(from); ok {
		from = p
	}
	session, _, err = r.startUpload(ctx, url.Values{"mount": {d.String()}, "from": {from}})
	if err != nil {
		return false, "", fmt.Errorf("mounting blob %s from %s: %w", d, from, err)
	}
	return session == "", session, nil
}

// CancelUpload abandons an upload session (best effort).
func (r *Repo) CancelUpload(ctx context.Context, session string) {
	if session == "" {
		return
	}
	if resp, err := r.c.do(ctx, call{method: http.MethodDelete, url: session, once: true,
		want: []int{http.StatusNoContent, http.StatusOK, http.StatusAccepted}}); err == nil {
		resp.Body.Close()
	}
}

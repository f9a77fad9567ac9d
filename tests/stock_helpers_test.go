package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// regGet fetches path of a plain HTTP registry at base (http://host).
func regGet(t *testing.T, base, path, accept string) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, b)
	}
	return b
}

// regPutManifest stores a manifest or index under ref (a tag or digest).
func regPutManifest(t *testing.T, base, repo, ref, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, base+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(b))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT manifest %s: %d\n%s", ref, resp.StatusCode, msg)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// regPutBlob uploads b to repo (monolithic POST then PUT).
func regPutBlob(t *testing.T, base, repo string, b []byte) ocispec.Descriptor {
	t.Helper()
	dg := digest.FromBytes(b)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %d %v", resp.StatusCode, err)
	}
	q := loc.Query()
	q.Set("digest", dg.String())
	loc.RawQuery = q.Encode()
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPut, loc.String(), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT blob: %d", resp.StatusCode)
	}
	return ocispec.Descriptor{Digest: dg, Size: int64(len(b))}
}

// putVariant stores under repo:tag a copy of the single-platform image
// repo:from, changed by edit (which may change the index's manifest
// descriptor, the manifest, or both): the variants SPEC.md §6.3 weighs.
func putVariant(t *testing.T, base, repo, from, tag string, edit func(d *ocispec.Descriptor, m *ocispec.Manifest)) {
	t.Helper()
	var idx ocispec.Index
	if err := json.Unmarshal(regGet(t, base, "/v2/"+repo+"/manifests/"+from, ocispec.MediaTypeImageIndex), &idx); err != nil {
		t.Fatal(err)
	}
	d := &idx.Manifests[0]
	// Variants weigh config-level alternatives: without the index's
	// platform mark, which already stops stock clients by itself.
	d.Platform.OSFeatures = nil
	var m ocispec.Manifest
	if err := json.Unmarshal(regGet(t, base, "/v2/"+repo+"/manifests/"+d.Digest.String(), ocispec.MediaTypeImageManifest), &m); err != nil {
		t.Fatal(err)
	}
	edit(d, &m)
	md := regPutManifest(t, base, repo, "tmp", ocispec.MediaTypeImageManifest, m)
	d.Digest, d.Size = md.Digest, md.Size
	regPutManifest(t, base, repo, tag, ocispec.MediaTypeImageIndex, idx)
}

// blobGets returns the blob GETs among proxy requests ("METHOD path").
func blobGets(reqs []string) []string {
	var out []string
	for _, r := range reqs {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "/blobs/sha256:") {
			out = append(out, r)
		}
	}
	return out
}

// dockerfileContext writes a build context with Dockerfile df and the
// given files.
func dockerfileContext(t *testing.T, df string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["Dockerfile"] = df
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// errorLine returns buildctl's final "error: ..." line.
func errorLine(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "error: ") {
			return lines[i]
		}
	}
	return fmt.Sprintf("(no error line; last: %s)", lines[len(lines)-1])
}

// configOf returns the config digest of image name of store s.
func configOf(t *testing.T, s *store, name string) string {
	t.Helper()
	m := decodeJSON(t, s.must("inspect", name).Stdout)
	man, _ := m["manifest"].(map[string]any)
	cfg, _ := man["config"].(map[string]any)
	d, _ := cfg["digest"].(string)
	if !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("oci2 inspect %s: no config digest", name)
	}
	return d
}

// manifestOf returns the manifest digest of image name of store s.
func manifestOf(t *testing.T, s *store, name string) string {
	t.Helper()
	m := decodeJSON(t, s.must("inspect", name).Stdout)
	desc, _ := m["manifest_descriptor"].(map[string]any)
	d, _ := desc["digest"].(string)
	if !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("oci2 inspect %s: no manifest digest in %v", name, m)
	}
	return d
}

// storeRefDigest returns the digest index.json of the store at dir names
// name with.
func storeRefDigest(t *testing.T, dir, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top ocispec.Index
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	for _, m := range top.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] == name {
			return m.Digest.String()
		}
	}
	t.Fatalf("store %s has no ref %s", dir, name)
	return ""
}

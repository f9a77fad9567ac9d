package admin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/memstore"
)

func mustCheck(t *testing.T, st CheckStore, readData bool) *Report {
	t.Helper()
	rep, err := Check(context.Background(), st, CheckOptions{ReadData: readData})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestCheckClean(t *testing.T) {
	st := memstore.New()
	storeImage(t, st, "docker.io/library/a:latest", baseTree())
	storeImage(t, st, "docker.io/library/b:latest", changedTree())
	storeImage(t, st, "docker.io/library/c:latest", baseTree()) // same image, second name
	for _, readData := range []bool{false, true} {
		rep := mustCheck(t, st, readData)
		if !rep.OK() {
			t.Fatalf("readData=%v: problems: %v", readData, rep.Problems)
		}
		if rep.Refs != 3 || rep.Manifests != 2 || rep.Packs == 0 || rep.Frames == 0 {
			t.Errorf("readData=%v: report %+v", readData, rep)
		}
		if readData && rep.DataBytes == 0 {
			t.Errorf("read no data")
		}
	}
}

// aFrame returns a data frame of the image named ref that no other image
// uses, and the frame descriptor from its pack index.
func aFrame(t *testing.T, st *memstore.Store, ref string, other ...string) digest.Digest {
	t.Helper()
	mine := framesOf(t, st, ref)
	for _, o := range other {
		for d := range framesOf(t, st, o) {
			delete(mine, d)
		}
	}
	for d := range mine {
		return digest.Digest(d)
	}
	t.Fatal("no frame of its own")
	return ""
}

func TestCheckMissingFrame(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	storeImage(t, st, "a", baseTree())
	storeImage(t, st, "b", changedTree())
	victim := aFrame(t, st, "b", "a")
	if err := st.DeleteBlob(ctx, victim); err != nil {
		t.Fatal(err)
	}
	for _, readData := range []bool{false, true} {
		rep := mustCheck(t, st, readData)
		found := false
		for _, p := range rep.Problems {
			if p.Ref != "b" {
				t.Errorf("problem blamed on %s: %v", p.Ref, p)
			}
			if p.Blob == victim && strings.Contains(p.Message, "not found") {
				found = true
			}
		}
		if !found {
			t.Errorf("readData=%v: missing frame %s not reported: %v", readData, victim, rep.Problems)
		}
	}
}

func TestCheckCorruptFrame(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	storeImage(t, st, "a", baseTree())
	// A data frame: check walks tree frames even without --read-data, so a
	// corrupt tree frame is found either way.
	img, err := reader.Open(ctx, st, mustResolve(t, st, "a"))
	if err != nil {
		t.Fatal(err)
	}
	victim := img.DataPacks[0].Index.Frames[0].Digest.Digest()
	b, err := st.ReadBlob(ctx, victim, 0)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), b...)
	bad[len(bad)/2] ^= 0xff // same size: only reading the data finds it
	if err := st.Corrupt(ctx, victim, bad); err != nil {
		t.Fatal(err)
	}
	if rep := mustCheck(t, st, false); !rep.OK() {
		t.Errorf("a size-preserving corruption was found without reading data: %v", rep.Problems)
	}
	rep := mustCheck(t, st, true)
	found := false
	for _, p := range rep.Problems {
		if p.Ref == "a" && p.Blob == victim && strings.Contains(p.Message, store.ErrDigestMismatch.Error()) {
			found = true
		}
	}
	if !found {
		t.Fatalf("corrupt frame %s not reported: %v", victim, rep.Problems)
	}
}

func TestCheckMissingPackIndexAndManifest(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	storeImage(t, st, "a", baseTree())
	desc := storeImage(t, st, "b", changedTree())
	img, err := reader.Open(ctx, st, mustResolve(t, st, "b"))
	if err != nil {
		t.Fatal(err)
	}
	pi := img.DataPacks[0].IndexDescriptor.Digest
	if err := st.DeleteBlob(ctx, pi); err != nil {
		t.Fatal(err)
	}
	rep := mustCheck(t, st, true)
	if !hasProblem(rep, "b", pi) {
		t.Fatalf("missing pack index %s not reported: %v", pi, rep.Problems)
	}
	if hasRef(rep, "a") {
		t.Errorf("image a blamed: %v", rep.Problems)
	}

	// A missing image index.
	if err := st.DeleteBlob(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
	rep = mustCheck(t, st, false)
	if !hasProblem(rep, "b", desc.Digest) {
		t.Fatalf("missing index %s not reported: %v", desc.Digest, rep.Problems)
	}
}

func TestCheckTreeChunkMissingFromPacks(t *testing.T) {
	// A manifest with a's trees but without its data packs: valid on its
	// own, but its files name chunks that none of its packs hold.
	ctx := context.Background()
	st := memstore.New()
	storeImage(t, st, "a", baseTree())
	md := mustResolve(t, st, "a")
	b, err := st.ReadBlob(ctx, md.Digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var layers []ocispec.Descriptor
	for i, l := range m.Layers {
		if l.MediaType == format.MediaTypeDataPack {
			layers = layers[:len(layers)-1] // drop its pack index too
			continue
		}
		layers = append(layers, m.Layers[i])
	}
	if len(layers) == len(m.Layers) {
		t.Fatal("image has no data packs")
	}
	m.Layers = layers
	nb, _ := json.Marshal(m)
	nd := digest.FromBytes(nb)
	if err := st.PutBlob(ctx, nd, nb); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRef(ctx, "broken", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: nd, Size: int64(len(nb))}); err != nil {
		t.Fatal(err)
	}
	// Trees are walked with and without reading data.
	for _, readData := range []bool{false, true} {
		rep := mustCheck(t, st, readData)
		paths := map[string]bool{}
		for _, p := range rep.Problems {
			if p.Ref != "broken" || p.Blob != nd || !strings.Contains(p.Message, "in none of the image's data packs") {
				t.Errorf("read data %v: unexpected problem %v", readData, p)
			}
			paths[p.Path] = true
		}
		for _, want := range []string{"bin/big", "bin/tool", "etc/hosts", "readme", "usr/share/doc"} {
			if !paths[want] {
				t.Errorf("read data %v: %s not reported; got %v", readData, want, paths)
			}
		}
		if paths["usr/share/zeros"] {
			t.Errorf("a file of zeros has no data chunk but was reported")
		}
	}
}

func mustResolve(t *testing.T, st *memstore.Store, name string) ocispec.Descriptor {
	t.Helper()
	d, err := reader.Resolve(context.Background(), st, st, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func hasProblem(rep *Report, ref string, blob digest.Digest) bool {
	for _, p := range rep.Problems {
		if p.Ref == ref && p.Blob == blob {
			return true
		}
	}
	return false
}

func hasRef(rep *Report, ref string) bool {
	for _, p := range rep.Problems {
		if p.Ref == ref {
			return true
		}
	}
	return false
}

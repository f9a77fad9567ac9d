package reader_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	rt "github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/store/memstore"
)

// Placeholders in a fuzzed manifest for the fuzzed config and pack index:
// whatever the mutations do to those blobs, the manifest can still name
// them, so the config and pack index checks of reader.Open are reached.
const (
	phConfig     = "@config@"
	phConfigSize = "987654321"
	phIndex      = "@pidx@"
	phIndexSize  = "987654322"
)

// FuzzOpen runs reader.Open's manifest, config and pack index checks on
// fuzzed blobs. It must never panic, and an image it accepts must hold
// what Open promises: a valid config, and frames that validate and fill
// their packs exactly.
func FuzzOpen(f *testing.F) {
	m, cfg, pidx := fuzzSeed(f)
	f.Add(m, cfg, pidx)
	f.Add(m, []byte(`{"rootfs":{"type":"layers","diff_ids":[]},"config":{"Env":["A=\u0000"]}}`), pidx)
	f.Add(m, []byte(`{"rootfs":{"type":"layers","diff_ids":[]},"config":{"WorkingDir":"rel"}}`), pidx)
	f.Fuzz(func(t *testing.T, manifest, config, index []byte) {
		st := memstore.New()
		dc, di := digest.FromBytes(config), digest.FromBytes(index)
		r := replacer(phConfig, dc.String(), phConfigSize, strconv.Itoa(len(config)),
			phIndex, di.String(), phIndexSize, strconv.Itoa(len(index)))
		manifest = r(manifest)
		dm := digest.FromBytes(manifest)
		for d, b := range map[digest.Digest][]byte{dc: config, di: index, dm: manifest} {
			if err := st.PutBlob(t.Context(), d, b); err != nil {
				t.Fatal(err)
			}
		}
		img, err := reader.Open(t.Context(), st, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest,
			Digest: dm, Size: int64(len(manifest))})
		if err != nil {
			return
		}
		if err := format.ValidateConfig(&img.Config.Config); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		for _, p := range append(append([]reader.Pack(nil), img.TreePacks...), img.DataPacks...) {
			var sum uint64
			for i := range p.Index.Frames {
				if err := p.Index.Frames[i].Validate(); err != nil {
					t.Fatalf("accepted an invalid frame: %v", err)
				}
				sum += p.Index.Frames[i].StoredSize
			}
			if sum != uint64(p.Descriptor.Size) {
				t.Fatalf("pack of %d bytes holds frames of %d", p.Descriptor.Size, sum)
			}
		}
	})
}

// fuzzSeed builds a small image and returns its manifest, with the config
// and the tree pack index replaced by placeholders, and those two blobs.
func fuzzSeed(f *testing.F) (manifest, config, index []byte) {
	root := rt.Dir("", 0o755, rt.Dir("etc", 0o755, rt.Symlink("l", "x")), rt.Fifo("p", 0o644))
	st, desc := build(f, rt.Image{Streams: rt.Encode(root)})
	img, err := reader.Open(f.Context(), st, desc)
	if err != nil {
		f.Fatal(err)
	}
	read := func(d digest.Digest) []byte {
		b, err := st.ReadBlob(f.Context(), d, 0)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	manifest, config = read(desc.Digest), read(img.Manifest.Config.Digest)
	pd := img.TreePacks[0].IndexDescriptor
	index = read(pd.Digest)
	descJSON := func(d digest.Digest, size int) string {
		return `"digest":"` + d.String() + `","size":` + strconv.Itoa(size)
	}
	r := replacer(descJSON(img.Manifest.Config.Digest, len(config)), `"digest":"`+phConfig+`","size":`+phConfigSize,
		descJSON(pd.Digest, len(index)), `"digest":"`+phIndex+`","size":`+phIndexSize,
		pd.Digest.String(), phIndex) // the pack's annotation
	orig := manifest
	manifest = r(manifest)
	back := replacer(phConfig, img.Manifest.Config.Digest.String(), phConfigSize, strconv.Itoa(len(config)),
		phIndex, pd.Digest.String(), phIndexSize, strconv.Itoa(len(index)))
	if !bytes.Equal(back(manifest), orig) {
		f.Fatalf("the placeholders do not give back the seed manifest: %s", manifest)
	}
	return manifest, config, index
}

// replacer returns a function replacing each old with its new, in order.
func replacer(oldnew ...string) func([]byte) []byte {
	return func(b []byte) []byte {
		for i := 0; i+1 < len(oldnew); i += 2 {
			b = bytes.ReplaceAll(b, []byte(oldnew[i]), []byte(oldnew[i+1]))
		}
		return b
	}
}

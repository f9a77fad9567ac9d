package writer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store/index"
)

// packTracker computes pack digests while a stream is packed: it follows the
// pack boundaries of SPEC.md §5.4 over the frames the Packer reports, in
// order, and hashes the stored bytes of new frames as they are put. A reused
// frame after a new one in the same pack is read back (a virtual frame is
// regenerated) and hashed in turn. A pack that starts with reused frames
// keeps them aside: they are read once a new frame follows in that pack; a
// pack of reused frames only is left to be resolved after Finish, from the
// store's records (an unchanged pack) or by reading its frames back.
type packTracker struct {
	pack.FrameStore
	rep  *reporter
	ctx  context.Context
	read func(context.Context, *format.Frame) ([]byte, error) // stored bytes of a reused frame

	mu    sync.Mutex
	stash map[format.ChunkID][]byte // stored bytes of new frames, by frame digest

	// Used by onFrame (one goroutine), then by finish.
	h        hash.Hash
	lead     []format.Frame // reused frames opening the pack, not hashed yet
	fresh    bool           // the open pack has a new frame
	deferred bool
	acc      uint64
	n        int
	packs    []trackedPack
	frames   int64
}

type trackedPack struct {
	frames int
	digest digest.Digest // "" when deferred
}

func newPackTracker(ctx context.Context, s *index.Session, rep *reporter) *packTracker {
	return &packTracker{FrameStore: s, rep: rep, ctx: ctx, read: s.StoredFrame,
		stash: make(map[format.ChunkID][]byte), h: sha256.New()}
}

// PutFrame implements pack.FrameStore, keeping the stored bytes for hashing.
func (t *packTracker) PutFrame(ctx context.Context, key format.ChunkID, f format.Frame, stored []byte) error {
	if err := t.FrameStore.PutFrame(ctx, key, f, stored); err != nil {
		return err
	}
	t.mu.Lock()
	t.stash[f.Digest] = stored
	t.mu.Unlock()
	return nil
}

// onFrame is the Packer's OnFrame: frames arrive in stream order.
func (t *packTracker) onFrame(ev pack.FrameEvent) {
	f := &ev.Frame
	if ev.Reused {
		t.rep.framesReused.Add(1)
	} else {
		t.rep.framesNew.Add(1)
		t.rep.storedNew.Add(int64(f.StoredSize))
	}
	t.mu.Lock()
	stored, ok := t.stash[f.Digest]
	delete(t.stash, f.Digest)
	t.mu.Unlock()
	t.frames++
	if !t.deferred {
		t.hash(f, ev.Reused, stored, ok)
	}
	z := f.StoredSize
	t.acc += z
	t.n++
	if len(f.Chunks) == 0 {
		t.deferred = true // not a valid frame; let the Packer's result decide
		return
	}
	d := f.Chunks[0].ID
	if t.acc >= format.PackMax ||
		(t.acc >= format.PackMin && uint64(binary.BigEndian.Uint32(d[4:8])) < (z<<32)/format.PackAverageExtra) {
		t.closePack()
	}
}

// hash adds frame f to the open pack's hash, in order; on any failure the
// pack is deferred.
func (t *packTracker) hash(f *format.Frame, reused bool, stored []byte, ok bool) {
	switch {
	case reused && !t.fresh:
		t.lead = append(t.lead, *f)
	case reused:
		b, err := t.read(t.ctx, f)
		if err != nil {
			t.deferred = true
			return
		}
		t.h.Write(b)
	case !ok:
		t.deferred = true
	default:
		for i := range t.lead {
			b, err := t.read(t.ctx, &t.lead[i])
			if err != nil {
				t.deferred = true
				return
			}
			t.h.Write(b)
		}
		t.lead = nil
		t.h.Write(stored)
		t.fresh = true
	}
}

func (t *packTracker) closePack() {
	p := trackedPack{frames: t.n}
	if !t.deferred && len(t.lead) == 0 {
		p.digest = digest.NewDigest(digest.SHA256, t.h)
	}
	t.packs = append(t.packs, p)
	t.h.Reset()
	t.lead, t.fresh = nil, false
	t.deferred, t.acc, t.n = false, 0, 0
}

// finish closes the open pack and returns the tracked packs.
func (t *packTracker) finish() []trackedPack {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n > 0 {
		t.closePack()
	}
	t.stash = nil
	return t.packs
}

// packLayers stores the pack indexes of one stream and returns the layer
// descriptors (pack index, then pack) of SPEC.md §6.1.
func packLayers(ctx context.Context, st Store, s *index.Session, packs []format.PackIndex,
	tracked []trackedPack, mediaType string) ([]ocispec.Descriptor, error) {
	consistent := len(tracked) == len(packs)
	for i := 0; consistent && i < len(packs); i++ {
		consistent = tracked[i].frames == len(packs[i].Frames)
	}
	layers := make([]ocispec.Descriptor, 0, 2*len(packs))
	for i := range packs {
		pi := &packs[i]
		enc, err := pi.Encode()
		if err != nil {
			return nil, fmt.Errorf("encoding pack index: %w", err)
		}
		id := digest.FromBytes(enc)
		if err := st.PutBlob(ctx, id, enc); err != nil {
			return nil, fmt.Errorf("storing pack index %s: %w", id, err)
		}
		var pd digest.Digest
		if consistent && tracked[i].digest != "" {
			pd = tracked[i].digest
		} else if d, ok := s.Index().PackDigest(id); ok {
			pd = d
		} else if pd, err = hashPack(ctx, s, pi); err != nil {
			return nil, err
		}
		s.Index().RecordPack(id, pd)
		layers = append(layers,
			ocispec.Descriptor{MediaType: format.MediaTypePackIndex, Digest: id, Size: int64(len(enc))},
			ocispec.Descriptor{
				MediaType:   mediaType,
				Digest:      pd,
				Size:        int64(pi.PackSize()),
				Annotations: map[string]string{format.AnnotationPackIndex: id.String()},
			})
	}
	return layers, nil
}

// hashPack computes a pack's digest from its frames in the store (virtual
// ones regenerated).
func hashPack(ctx context.Context, s *index.Session, pi *format.PackIndex) (digest.Digest, error) {
	h := sha256.New()
	err := pack.WritePack(ctx, h, pi, s.StoredFrame)
	if err != nil {
		return "", fmt.Errorf("hashing pack: %w", err)
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The test vectors of SPEC.md live in testdata/vectors.json. Values are
// written by hand; `go test ./format -run TestVectors -update` fills in hex
// and sha256 of the valid vectors and rewrites the invalid ones from
// invalidTreeCases and invalidPackIndexCases. Review the diff before
// committing: a changed hex is a format change.
var update = flag.Bool("update", false, "rewrite hex and digests in testdata/vectors.json")

const vectorsPath = "testdata/vectors.json"

// goldenDigests pin the vectors a second time, so that regenerating the file
// with -update cannot silently change the format.
var goldenDigests = map[string]string{
	"empty":                             "sha256:724ee6e24d7442d6619899bddf223008886c16cf9c3f84427c913d2e588d726a",
	"dir-one-file-data-and-zero-extent": "sha256:7a3b9fa41137dedd728cf5c42a7509d6e434986d1179c6db98e69e44855aca01",
	"symlink-negative-mtime":            "sha256:138f0bdc17f4d5fd3d5025a4d2ff364c07a53ef1917213ae3afdb3daeeab1585",
	"hardlink":                          "sha256:15b43584b9efe9eb6b4fb4d17bb1c25c0c5a3f46ea6c0a6c4c9aee43c6a020f7",
	// Its fifo's gid was 4294967295 until SPEC.md §4.2 made (gid_t)-1
	// invalid (issue 14); 4294967294 keeps the largest valid id.
	"devices-fifo-setuid":   "sha256:a068e5d1ade5d146cbc4f80816be1db41bb86223fdc05ba4f5af7f873c0e44c7",
	"xattrs":                "sha256:4b2f1eedef5c1e642b8441bfe05034322380042d27d388deca1ad9ca7f15b605",
	"noncritical-extension": "sha256:f32cd040ad9f1766a2efd407545e4a46919deb221e83eee590bb7144f219f292",
	"root-wrapper":          "sha256:34f9ad2e59737ba9d1e92bc99d0f061d538f539418c7955cc971ab2b568c8c89",
	"one-raw-frame":         "sha256:b9af4fefb2ce9ba359c7b5d354aecfff2cb00527407d6c626a5247e4852433dd",
	"zstd-and-raw-frames":   "sha256:cefc30138722323736d53b5d9f15f3124e29ad6fb1dfafc175b7f2f0c12c45c8",
	// SPEC.md §5.3: a zstd frame larger than its raw bytes (up to the zstd
	// bound) is accepted on read (issue 14).
	"zstd-frame-larger-than-raw": "sha256:109cb8a89f6068524b3855aa31d26c235c6344b8cb0ad79cefa6490d22a60d09",
}

type vectorFile struct {
	Comment            []string        `json:"comment"`
	Trees              []treeVector    `json:"trees"`
	PackIndexes        []pidxVector    `json:"pack_indexes"`
	InvalidTrees       []invalidVector `json:"invalid_trees"`
	InvalidPackIndexes []invalidVector `json:"invalid_pack_indexes"`
}

type treeVector struct {
	Name    string      `json:"name"`
	Entries []jsonEntry `json:"entries"`
	Hex     string      `json:"hex"`
	SHA256  string      `json:"sha256"`
}

type pidxVector struct {
	Name   string      `json:"name"`
	Frames []jsonFrame `json:"frames"`
	Hex    string      `json:"hex"`
	SHA256 string      `json:"sha256"`
}

type invalidVector struct {
	Name  string `json:"name"`
	Hex   string `json:"hex"`
	Error string `json:"error"` // the decoder's error contains this text
}

// jsonEntry is Entry in the vectors' notation: type by name, mode in octal,
// xattr names and values in hex (they may be any bytes but NUL).
type jsonEntry struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Mode       string          `json:"mode,omitempty"`
	UID        uint32          `json:"uid,omitempty"`
	GID        uint32          `json:"gid,omitempty"`
	MtimeSec   int64           `json:"mtime_sec,omitempty"`
	MtimeNsec  uint32          `json:"mtime_nsec,omitempty"`
	Xattrs     []jsonXattr     `json:"xattrs,omitempty"`
	Size       uint64          `json:"size,omitempty"`
	Extents    []jsonExtent    `json:"extents,omitempty"`
	Tree       string          `json:"tree,omitempty"`
	Target     string          `json:"target,omitempty"`
	DevMajor   uint32          `json:"dev_major,omitempty"`
	DevMinor   uint32          `json:"dev_minor,omitempty"`
	Extensions []jsonExtension `json:"extensions,omitempty"`
}

type jsonXattr struct {
	NameHex  string `json:"name_hex"`
	ValueHex string `json:"value_hex"`
}

type jsonExtent struct {
	Zero   bool   `json:"zero,omitempty"`
	Length uint64 `json:"length"`
	Chunk  string `json:"chunk,omitempty"`
}

type jsonExtension struct {
	Tag      uint64 `json:"tag"`
	ValueHex string `json:"value_hex"`
}

type jsonFrame struct {
	Encoding   string         `json:"encoding"` // "raw" or "zstd"
	StoredSize uint64         `json:"stored_size"`
	Digest     string         `json:"digest"`
	Chunks     []jsonChunkRef `json:"chunks"`
}

type jsonChunkRef struct {
	Size uint32 `json:"size"`
	ID   string `json:"id"`
}

var typeNames = map[string]EntryType{
	"dir": TypeDir, "reg": TypeReg, "symlink": TypeSymlink, "hardlink": TypeHardlink,
	"char": TypeChar, "block": TypeBlock, "fifo": TypeFifo,
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func mustID(t *testing.T, s string) ChunkID {
	t.Helper()
	if s == "" {
		return ChunkID{}
	}
	id, err := ParseChunkID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (v *treeVector) tree(t *testing.T) *Tree {
	t.Helper()
	tr := &Tree{}
	for _, je := range v.Entries {
		typ, ok := typeNames[je.Type]
		if !ok {
			t.Fatalf("vector %s: unknown type %q", v.Name, je.Type)
		}
		e := Entry{Name: je.Name, Type: typ, UID: je.UID, GID: je.GID, MtimeSec: je.MtimeSec,
			MtimeNsec: je.MtimeNsec, Size: je.Size, Tree: mustID(t, je.Tree), Target: je.Target,
			DevMajor: je.DevMajor, DevMinor: je.DevMinor}
		if je.Mode != "" {
			m, err := strconv.ParseUint(je.Mode, 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			e.Mode = uint32(m)
		}
		for _, x := range je.Xattrs {
			e.Xattrs = append(e.Xattrs, Xattr{Name: string(mustHex(t, x.NameHex)), Value: mustHex(t, x.ValueHex)})
		}
		for _, x := range je.Extents {
			e.Extents = append(e.Extents, Extent{Zero: x.Zero, Length: x.Length, Chunk: mustID(t, x.Chunk)})
		}
		for _, x := range je.Extensions {
			e.Extensions = append(e.Extensions, Extension{Tag: x.Tag, Value: mustHex(t, x.ValueHex)})
		}
		tr.Entries = append(tr.Entries, e)
	}
	return tr
}

func (v *pidxVector) packIndex(t *testing.T) *PackIndex {
	t.Helper()
	p := &PackIndex{}
	for _, jf := range v.Frames {
		f := Frame{StoredSize: jf.StoredSize, Digest: mustID(t, jf.Digest)}
		switch jf.Encoding {
		case "raw":
			f.Encoding = EncodingRaw
		case "zstd":
			f.Encoding = EncodingZstd
		default:
			t.Fatalf("vector %s: unknown encoding %q", v.Name, jf.Encoding)
		}
		for _, c := range jf.Chunks {
			f.Chunks = append(f.Chunks, ChunkRef{Size: c.Size, ID: mustID(t, c.ID)})
		}
		p.Frames = append(p.Frames, f)
	}
	return p
}

func digestString(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func loadVectors(t testing.TB) *vectorFile {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&vf); err != nil {
		t.Fatalf("%s: %v", vectorsPath, err)
	}
	return &vf
}

func TestVectors(t *testing.T) {
	vf := loadVectors(t)
	if len(vf.Trees)+len(vf.PackIndexes) != len(goldenDigests) {
		t.Fatalf("%d vectors, %d golden digests", len(vf.Trees)+len(vf.PackIndexes), len(goldenDigests))
	}
	for _, v := range vf.Trees {
		if goldenDigests[v.Name] != v.SHA256 {
			t.Errorf("tree vector %s: sha256 %s, golden %s", v.Name, v.SHA256, goldenDigests[v.Name])
		}
	}
	for _, v := range vf.PackIndexes {
		if goldenDigests[v.Name] != v.SHA256 {
			t.Errorf("pack index vector %s: sha256 %s, golden %s", v.Name, v.SHA256, goldenDigests[v.Name])
		}
	}
	for i := range vf.Trees {
		v := &vf.Trees[i]
		t.Run("tree/"+v.Name, func(t *testing.T) {
			tr := v.tree(t)
			b, err := tr.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				v.Hex, v.SHA256 = hex.EncodeToString(b), digestString(b)
			}
			checkVector(t, b, v.Hex, v.SHA256)
			back, err := DecodeTree(mustHex(t, v.Hex))
			if err != nil {
				t.Fatalf("decoding: %v", err)
			}
			again, _ := back.Encode()
			if !bytes.Equal(again, b) {
				t.Fatal("decode+encode does not reproduce the vector")
			}
		})
	}
	for i := range vf.PackIndexes {
		v := &vf.PackIndexes[i]
		t.Run("packindex/"+v.Name, func(t *testing.T) {
			b, err := v.packIndex(t).Encode()
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				v.Hex, v.SHA256 = hex.EncodeToString(b), digestString(b)
			}
			checkVector(t, b, v.Hex, v.SHA256)
			back, err := DecodePackIndex(mustHex(t, v.Hex))
			if err != nil {
				t.Fatalf("decoding: %v", err)
			}
			again, _ := back.Encode()
			if !bytes.Equal(again, b) {
				t.Fatal("decode+encode does not reproduce the vector")
			}
		})
	}
	if *update {
		vf.InvalidTrees = invalidVectors(t, invalidTreeCases(t), true)
		vf.InvalidPackIndexes = invalidVectors(t, invalidPackIndexCases(t), false)
		writeVectors(t, vf)
	}
	for _, v := range vf.InvalidTrees {
		_, err := DecodeTree(mustHex(t, v.Hex))
		checkInvalid(t, "invalid tree "+v.Name, err, v.Error)
	}
	for _, v := range vf.InvalidPackIndexes {
		_, err := DecodePackIndex(mustHex(t, v.Hex))
		checkInvalid(t, "invalid pack index "+v.Name, err, v.Error)
	}
}

func checkVector(t *testing.T, b []byte, wantHex, wantDigest string) {
	t.Helper()
	if got := hex.EncodeToString(b); got != wantHex {
		t.Fatalf("encoding differs from the vector:\n got %s\nwant %s", got, wantHex)
	}
	if got := digestString(b); got != wantDigest {
		t.Fatalf("digest %s, vector pins %s", got, wantDigest)
	}
}

func checkInvalid(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted, want error containing %q", what, want)
		return
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %q, want it to contain %q", what, err, want)
	}
}

// invalidCase is an encoding a decoder must reject with an error containing
// want.
type invalidCase struct {
	name   string
	b      []byte
	want   string
	vector bool // also written to vectors.json
}

func invalidVectors(t *testing.T, cases []invalidCase, tree bool) []invalidVector {
	var out []invalidVector
	for _, c := range cases {
		if !c.vector {
			continue
		}
		out = append(out, invalidVector{Name: c.name, Hex: hex.EncodeToString(c.b), Error: c.want})
	}
	return out
}

func writeVectors(t *testing.T, vf *vectorFile) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(vf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorsPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "rewrote %s\n", vectorsPath)
}

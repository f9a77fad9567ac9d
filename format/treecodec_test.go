package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

var (
	idA = Sum([]byte("a"))
	idB = Sum([]byte("b"))
)

func regEntry(name string, size uint64) Entry {
	e := Entry{Name: name, Type: TypeReg, Mode: 0o644, Size: size}
	if size > 0 {
		e.Extents = []Extent{{Length: size, Chunk: idA}}
	}
	return e
}

// rawTree encodes t without validating it, to build invalid objects.
func rawTree(t *testing.T, tr *Tree) []byte {
	t.Helper()
	b, err := tr.encodeValid()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func treeHeader(count uint64) []byte {
	b := append([]byte(treeMagic), 1)
	return binary.AppendUvarint(b, count)
}

// entryCases are trees whose Encode must fail and whose (unvalidated)
// encoding DecodeTree must reject, with the same message.
func entryCases() []struct {
	name   string
	tree   Tree
	want   string
	vector bool
} {
	one := func(e Entry) Tree { return Tree{Entries: []Entry{e}} }
	withX := func(xs ...Xattr) Tree { e := regEntry("f", 0); e.Xattrs = xs; return one(e) }
	withExt := func(size uint64, xs ...Extent) Tree {
		return one(Entry{Name: "f", Type: TypeReg, Size: size, Extents: xs})
	}
	link := func(target string) Tree { return one(Entry{Name: "l", Type: TypeHardlink, Target: target}) }
	manyX := make([]Xattr, MaxXattrs+1)
	for i := range manyX {
		manyX[i] = Xattr{Name: "user." + strings.Repeat("x", 4) + string(rune('a'+i/26/26%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i%26))}
	}
	return []struct {
		name   string
		tree   Tree
		want   string
		vector bool
	}{
		{"empty name", one(regEntry("", 0)), `tree entry 0 "": empty name`, true},
		{"dot", one(regEntry(".", 0)), `name is . or ..`, false},
		{"dotdot", one(regEntry("..", 0)), `tree entry 0 "..": name is . or ..`, true},
		{"slash", one(regEntry("a/b", 0)), `tree entry 0 "a/b": name contains /`, true},
		{"nul", one(regEntry("a\x00b", 0)), `name contains NUL`, true},
		{"long name", one(regEntry(strings.Repeat("n", 256), 0)), `name: length 256 exceeds 255`, true},
		{"unsorted", Tree{Entries: []Entry{regEntry("b", 0), regEntry("a", 0)}}, `tree entry 1 "a": names not sorted`, true},
		{"duplicate", Tree{Entries: []Entry{regEntry("a", 0), regEntry("a", 0)}}, `tree entry 1 "a": duplicate name`, true},
		{"type 0", one(Entry{Name: "x"}), `tree entry 0 "x": unknown entry type 0`, true},
		{"type 8", one(Entry{Name: "x", Type: 8}), `unknown entry type 8`, false},
		{"mode", one(Entry{Name: "x", Type: TypeFifo, Mode: 0o10644}), `mode 010644 has bits outside 07777`, true},
		{"uid (uid_t)-1", one(Entry{Name: "x", Type: TypeReg, Mode: 0o4755, UID: NoOwner}), `tree entry 0 "x": uid 4294967295 is (uid_t)-1, not an owner`, true},
		{"gid (gid_t)-1", one(Entry{Name: "x", Type: TypeFifo, Mode: 0o2755, GID: NoOwner}), `tree entry 0 "x": gid 4294967295 is (gid_t)-1, not an owner`, true},
		{"nsec", one(Entry{Name: "x", Type: TypeFifo, MtimeNsec: 1e9}), `mtime nanoseconds 1000000000 not below 1e9`, true},
		{"xattr empty name", withX(Xattr{Name: ""}), `xattr 0: empty name`, true},
		{"xattr nul", withX(Xattr{Name: "user.a\x00"}), `name contains NUL`, false},
		{"xattr long name", withX(Xattr{Name: strings.Repeat("u", 256)}), `xattr name: length 256 exceeds 255`, false},
		{"xattr unsorted", withX(Xattr{Name: "user.b"}, Xattr{Name: "user.a"}), `xattr 1 "user.a": names not sorted`, true},
		{"xattr duplicate", withX(Xattr{Name: "user.a"}, Xattr{Name: "user.a"}), `xattr 1 "user.a": names not sorted`, false},
		{"xattr big value", withX(Xattr{Name: "user.a", Value: make([]byte, MaxXattrValueLen+1)}), `xattr value: length 65537 exceeds 65536`, false},
		{"too many xattrs", withX(manyX...), `1025 xattrs, more than 1024`, false},
		{"trusted.overlay", withX(Xattr{Name: "trusted.overlay.opaque", Value: []byte("y")}), `overlayfs xattr not allowed`, true},
		{"user.overlay", withX(Xattr{Name: "user.overlay.redirect"}), `xattr 0 "user.overlay.redirect": overlayfs xattr not allowed`, false},
		{"extent zero length", withExt(0, Extent{Length: 0, Chunk: idA}), `extent 0: zero length`, true},
		{"data extent too long", withExt(ChunkMaxSize+1, Extent{Length: ChunkMaxSize + 1, Chunk: idA}), `data extent of 262145 bytes, more than 262144`, true},
		{"zero extent unaligned", withExt(32769, Extent{Zero: true, Length: 32769}), `zero extent of 32769 bytes, not a multiple of 4096`, true},
		{"zero extent short", withExt(28672, Extent{Zero: true, Length: 28672}), `zero extent of 28672 bytes`, false},
		{"adjacent zero extents", withExt(65536, Extent{Zero: true, Length: 32768}, Extent{Zero: true, Length: 32768}), `extent 1: adjacent zero extents`, true},
		{"size mismatch", withExt(5, Extent{Length: 4, Chunk: idA}), `extent lengths sum to 4, not size 5`, true},
		{"extents overflow", withExt(0, Extent{Zero: true, Length: 1 << 63}, Extent{Length: 1, Chunk: idA}, Extent{Zero: true, Length: 1 << 63}), `extent lengths overflow`, false},
		{"empty symlink", one(Entry{Name: "s", Type: TypeSymlink}), `empty symlink target`, true},
		{"long symlink", one(Entry{Name: "s", Type: TypeSymlink, Target: strings.Repeat("t", MaxLinkLen+1)}), `link target: length 4096 exceeds 4095`, false},
		{"symlink nul", one(Entry{Name: "s", Type: TypeSymlink, Target: "a\x00"}), `symlink target contains NUL`, false},
		{"empty hardlink", link(""), `empty hardlink target`, false},
		{"absolute hardlink", link("/bin/a"), `hardlink target "/bin/a": component "": empty name`, true},
		{"hardlink dotdot", link("bin/../a"), `component "..": name is . or ..`, false},
		{"hardlink double slash", link("bin//a"), `component "": empty name`, false},
		{"hardlink mode", one(Entry{Name: "l", Type: TypeHardlink, Target: "a", Mode: 0o644}), `hardlink carries metadata`, true},
		{"hardlink owner", one(Entry{Name: "l", Type: TypeHardlink, Target: "a", GID: 1}), `hardlink carries metadata`, false},
		{"hardlink mtime", one(Entry{Name: "l", Type: TypeHardlink, Target: "a", MtimeNsec: 1}), `hardlink carries metadata`, false},
		{"hardlink xattr", one(Entry{Name: "l", Type: TypeHardlink, Target: "a", Xattrs: []Xattr{{Name: "user.a"}}}), `hardlink carries metadata`, false},
		{"extensions unsorted", one(Entry{Name: "x", Type: TypeFifo, Extensions: []Extension{{Tag: 4}, {Tag: 2}}}), `extension 1 (tag 2): tags not increasing`, true},
		{"critical extension", one(Entry{Name: "x", Type: TypeFifo, Extensions: []Extension{{Tag: 2}, {Tag: 5}}}), `tree entry 0 "x": unsupported critical extension 5`, true},
	}
}

func TestTreeRejectsInvalidEntries(t *testing.T) {
	for _, c := range entryCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.tree.Encode()
			checkInvalid(t, "Encode", err, stripWireOnly(c.want))
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("Encode error %v is not ErrInvalid", err)
			}
			_, err = DecodeTree(rawTree(t, &c.tree))
			checkInvalid(t, "DecodeTree", err, c.want)
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("DecodeTree error %v is not ErrInvalid", err)
			}
		})
	}
}

// stripWireOnly maps a decoder's message for a length read off the wire to
// the message the encoder gives for the same Go value.
func stripWireOnly(want string) string {
	switch {
	case strings.Contains(want, "name: length 256"):
		return "longer than 255 bytes"
	case strings.Contains(want, "xattr value: length"):
		return "value of 65537 bytes, more than 65536"
	case strings.Contains(want, "link target: length"):
		return "symlink target longer than 4095 bytes"
	}
	return want
}

// TestTreeEncodeRejectsLostFields: fields of other entry types would be
// silently dropped by the encoding, so Encode refuses them.
func TestTreeEncodeRejectsLostFields(t *testing.T) {
	for _, c := range []struct {
		e    Entry
		want string
	}{
		{Entry{Name: "x", Type: TypeFifo, Tree: idA}, "tree digest set on a non-directory"},
		{Entry{Name: "x", Type: TypeFifo, Size: 1}, "size or extents set on a non-regular file"},
		{Entry{Name: "x", Type: TypeDir, Extents: []Extent{{Length: 1, Chunk: idA}}}, "size or extents set"},
		{Entry{Name: "x", Type: TypeReg, Target: "a"}, "link target set on a non-link"},
		{Entry{Name: "x", Type: TypeSymlink, Target: "a", DevMajor: 1}, "device numbers set on a non-device"},
		{Entry{Name: "x", Type: TypeReg, Size: 32768, Extents: []Extent{{Zero: true, Length: 32768, Chunk: idA}}}, "zero extent with a chunk id"},
	} {
		_, err := (&Tree{Entries: []Entry{c.e}}).Encode()
		checkInvalid(t, c.want, err, c.want)
	}
}

// invalidTreeCases are encodings DecodeTree must reject; the ones marked
// vector go to testdata/vectors.json.
func invalidTreeCases(t *testing.T) []invalidCase {
	valid := rawTree(t, &Tree{Entries: []Entry{regEntry("a", 3)}})
	fifo := func(mid []byte) []byte {
		// name "x", type fifo, then mid in place of mode..mtime, then
		// nxattr 0 and next 0.
		b := append(treeHeader(1), 1, 'x', byte(TypeFifo))
		b = append(b, mid...)
		return append(b, 0, 0)
	}
	cases := []invalidCase{
		{"bad magic", append([]byte("oci2tref"), 1, 0), "not a tree object: bad magic", true},
		{"version 2", append([]byte(treeMagic), 2, 0), "unsupported tree version 2", true},
		{"version 0", append([]byte(treeMagic), 0, 0), "unsupported tree version 0", false},
		{"no count", []byte(treeMagic + "\x01"), "tree entry count: truncated", false},
		{"trailing byte", append(treeHeader(0), 0), "tree object: 1 trailing bytes", true},
		{"truncated", valid[:len(valid)-1], "tree entry 0 \"a\": extension count: truncated", true},
		{"truncated id", valid[:len(valid)-10], "chunk id: length 32 exceeds", false},
		{"non-minimal count", append([]byte(treeMagic), 1, 0x80, 0x00), "tree entry count: non-minimal uvarint", true},
		{"non-minimal mode", fifo([]byte{0xa4, 0x83, 0x00, 0, 0, 0, 0}), "tree entry 0 \"x\": mode: non-minimal uvarint", true},
		{"uvarint overflow", append([]byte(treeMagic), 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), "overflows 64 bits", false},
		{"count 2^60", treeHeader(1 << 60), "tree entry count 1152921504606846976 exceeds what the 0 bytes left can hold", true},
		{"uid over 32 bits", fifo([]byte{0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0}), "uid: 4294967296 does not fit in 32 bits", true},
		{"unknown extent kind", append(treeHeader(1), 1, 'f', byte(TypeReg), 0, 0, 0, 0, 0, 0, 1, 1, 2, 1, 0), "extent 0: unknown extent kind 2", true},
		{"extent count 2^60", binary.AppendUvarint(append(treeHeader(1), 1, 'f', byte(TypeReg), 0, 0, 0, 0, 0, 0, 1), 1<<60), "extent count 1152921504606846976 exceeds", false},
		{"xattr count 2^60", binary.AppendUvarint(append(treeHeader(1), 1, 'f', byte(TypeFifo), 0, 0, 0, 0, 0), 1<<60), "1152921504606846976 xattrs, more than 1024", false},
		{"device major over 32 bits", append(treeHeader(1), 1, 'c', byte(TypeChar), 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0), "device major: 4294967296 does not fit in 32 bits", false},
		{"too large", make([]byte, MaxTreeObjectSize+1), "tree object of 16777217 bytes exceeds 16777216", false},
	}
	for _, c := range entryCases() {
		if c.vector {
			cases = append(cases, invalidCase{c.name, rawTree(t, &c.tree), c.want, true})
		}
	}
	return cases
}

func TestDecodeTreeRejects(t *testing.T) {
	for _, c := range invalidTreeCases(t) {
		_, err := DecodeTree(c.b)
		checkInvalid(t, c.name, err, c.want)
	}
}

func TestTreeEncodeTooLarge(t *testing.T) {
	e := regEntry("f", 0)
	for i := 0; i < 300; i++ {
		e.Xattrs = append(e.Xattrs, Xattr{Name: "user." + string(rune('a'+i/26/26)) + string(rune('a'+i/26%26)) + string(rune('a'+i%26)),
			Value: make([]byte, MaxXattrValueLen)})
	}
	_, err := (&Tree{Entries: []Entry{e}}).Encode()
	checkInvalid(t, "encode", err, "tree object larger than 16777216 bytes")
}

// TestDecodeTreeHandWritten pins one encoding written byte by byte from
// SPEC.md §4.1, independently of the encoder.
func TestDecodeTreeHandWritten(t *testing.T) {
	b := []byte("oci2tree")
	b = append(b, 1, 2) // version, count
	// "dev" char 0620 uid 0 gid 5 mtime -1 s 7 ns, no xattrs, 4:64, no ext
	b = append(b, 3, 'd', 'e', 'v', 5, 0x90, 0x03, 0, 5, 1, 7, 0, 4, 64, 0)
	// "f" reg 0644 uid 300, gid 0, mtime 0, xattr user.a="", size 40960:
	// data 8192 idA, zero 32768
	b = append(b, 1, 'f', 2, 0xa4, 0x03, 0xac, 0x02, 0, 0, 0, 1, 6, 'u', 's', 'e', 'r', '.', 'a', 0)
	b = append(b, 0x80, 0xc0, 0x02, 2, 0, 0x80, 0x40)
	b = append(b, idA[:]...)
	b = append(b, 1, 0x80, 0x80, 0x02, 0)
	want := &Tree{Entries: []Entry{
		{Name: "dev", Type: TypeChar, Mode: 0o620, GID: 5, MtimeSec: -1, MtimeNsec: 7, DevMajor: 4, DevMinor: 64},
		{Name: "f", Type: TypeReg, Mode: 0o644, UID: 300, Xattrs: []Xattr{{Name: "user.a", Value: []byte{}}},
			Size: 40960, Extents: []Extent{{Length: 8192, Chunk: idA}, {Zero: true, Length: 32768}}},
	}}
	got, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b) {
		t.Fatalf("encoding\n got %x\nwant %x", got, b)
	}
	back, err := DecodeTree(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Entries) != 2 || back.Entries[1].Extents[1] != want.Entries[1].Extents[1] || back.Entries[0].DevMinor != 64 {
		t.Fatalf("decoded %+v", back)
	}
}

// TestDecodeTreeDoesNotAlias: decoded values stay valid when the input is
// reused.
func TestDecodeTreeDoesNotAlias(t *testing.T) {
	e := regEntry("f", 0)
	e.Xattrs = []Xattr{{Name: "user.a", Value: []byte("value")}}
	b := rawTree(t, &Tree{Entries: []Entry{e}})
	tr, err := DecodeTree(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'z'
	}
	if string(tr.Entries[0].Xattrs[0].Value) != "value" || tr.Entries[0].Name != "f" {
		t.Fatalf("decoded tree aliases its input: %+v", tr.Entries[0])
	}
}

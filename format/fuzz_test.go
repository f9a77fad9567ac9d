package format

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func FuzzDecodeTree(f *testing.F) {
	vf := loadVectors(f)
	for _, v := range vf.Trees {
		b, _ := hex.DecodeString(v.Hex)
		f.Add(b)
	}
	for _, v := range vf.InvalidTrees {
		b, _ := hex.DecodeString(v.Hex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := DecodeTree(b)
		if err != nil {
			return
		}
		again, err := tr.Encode()
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
	})
}

func FuzzDecodePackIndex(f *testing.F) {
	vf := loadVectors(f)
	for _, v := range vf.PackIndexes {
		b, _ := hex.DecodeString(v.Hex)
		f.Add(b)
	}
	for _, v := range vf.InvalidPackIndexes {
		b, _ := hex.DecodeString(v.Hex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePackIndex(b)
		if err != nil {
			return
		}
		again, err := p.Encode()
		if err != nil {
			t.Fatalf("decoded pack index does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
	})
}

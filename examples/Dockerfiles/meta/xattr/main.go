// Command xattr sets, gets and lists extended attributes (busybox has no
// setfattr):
//
//	xattr set NAME VALUE FILE   (VALUE "hex:..." for binary values)
//	xattr get NAME FILE         (printable values as text, others as hex:...)
//	xattr list FILE
package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "xattr:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 4 && args[0] == "set":
		v := []byte(args[2])
		if h, ok := strings.CutPrefix(args[2], "hex:"); ok {
			var err error
			if v, err = hex.DecodeString(h); err != nil {
				return err
			}
		}
		return syscall.Setxattr(args[3], args[1], v, 0)
	case len(args) == 3 && args[0] == "get":
		buf := make([]byte, 65536)
		n, err := syscall.Getxattr(args[2], args[1], buf)
		if err != nil {
			return fmt.Errorf("%s %s: %w", args[2], args[1], err)
		}
		fmt.Printf("%s %s=%s\n", args[2], args[1], show(buf[:n]))
		return nil
	case len(args) == 2 && args[0] == "list":
		buf := make([]byte, 65536)
		n, err := syscall.Listxattr(args[1], buf)
		if err != nil {
			return err
		}
		for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
			if name != "" {
				fmt.Printf("%s %s\n", args[1], name)
			}
		}
		return nil
	}
	return fmt.Errorf("usage: xattr set NAME VALUE FILE | get NAME FILE | list FILE")
}

func show(v []byte) string {
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return "hex:" + hex.EncodeToString(v)
		}
	}
	return string(v)
}

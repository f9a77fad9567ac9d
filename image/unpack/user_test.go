package unpack

import (
	"fmt"
	"strings"
	"testing"
)

func TestResolveUser(t *testing.T) {
	passwd := []byte(`root:x:0:0:root:/root:/bin/bash
# comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken line
app:x:1000:1001::/home/app:/bin/sh
big:x:4000000000:4000000000::/:/bin/false
`)
	group := []byte(`root:x:0:
staff:x:50:app,other
app:x:1001:
wheel:x:10:root,app
bad:x:notanumber:app
`)
	tests := []struct {
		spec string
		want string // uid gid [additional]
		err  string
	}{
		{"", "0 0 [10]", ""},
		{"root", "0 0 [10]", ""},
		{"0", "0 0 [10]", ""},
		// The malformed "bad" line reads as gid 0, as in runc and Docker.
		{"app", "1000 1001 [50 10 0]", ""},
		{"1000", "1000 1001 [50 10 0]", ""},
		{"app:staff", "1000 50 []", ""},
		{"app:77", "1000 77 []", ""},
		{"1234", "1234 0 []", ""},
		{"1234:5", "1234 5 []", ""},
		{"big", "4000000000 4000000000 []", ""},
		{"4000000000", "", `uids and gids must be in range`},
		{"-1", "", `uids and gids must be in range`},
		{":staff", "0 50 []", ""},
		{"nobody", "", `user "nobody": unable to find user nobody`},
		{"app:nogroup", "", `unable to find group nogroup`},
		{"4294967295", "", `uids and gids must be in range`},
	}
	for _, tc := range tests {
		u, err := resolveUser(tc.spec, passwd, group)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("resolveUser(%q) = %+v, %v; want error %q", tc.spec, u, err, tc.err)
			}
			continue
		}
		add := u.AdditionalGids
		if add == nil {
			add = []uint32{}
		}
		if got := fmt.Sprint(u.UID, u.GID, add); err != nil || got != tc.want {
			t.Errorf("resolveUser(%q) = %s, %v; want %s", tc.spec, got, err, tc.want)
		}
	}
}

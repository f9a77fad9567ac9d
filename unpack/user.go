package unpack

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

type passwdEntry struct {
	name     string
	uid, gid uint32
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// parseID parses a uid or gid (0 to 2^32-2; 2^32-1 is "no id").
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == math.MaxUint32 {
		return 0, false
	}
	return uint32(n), true
}

// parsePasswd reads /etc/passwd lines (name:password:uid:gid:...); malformed
// lines are ignored, as libc does.
func parsePasswd(b []byte) []passwdEntry {
	var out []passwdEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") || f[0] == "" {
			continue
		}
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if ok1 && ok2 {
			out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid})
		}
	}
	return out
}

// parseGroup reads /etc/group lines (name:password:gid:member,member).
func parseGroup(b []byte) []groupEntry {
	var out []groupEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") || f[0] == "" {
			continue
		}
		gid, ok := parseID(f[2])
		if !ok {
			continue
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	}
	return out
}

// resolveUser turns the image config's User ("", name, uid, and either
// with ":group" or ":gid") into ids, as runc and Docker do: a name must be
// in passwd; a uid need not be (then gid 0); a group given explicitly
// replaces the primary group and drops supplementary groups, else the
// user's name's memberships in group are supplementary groups.
func resolveUser(spec string, passwd []passwdEntry, group []groupEntry) (specs.User, error) {
	userArg, groupArg, hasGroup := strings.Cut(spec, ":")
	if userArg == "" {
		userArg = "0"
	}
	var u specs.User
	var name string
	if uid, ok := parseID(userArg); ok {
		u.UID = uid
		for _, p := range passwd {
			if p.uid == uid {
				name, u.GID = p.name, p.gid
				break
			}
		}
	} else {
		found := false
		for _, p := range passwd {
			if p.name == userArg {
				name, u.UID, u.GID, found = p.name, p.uid, p.gid, true
				break
			}
		}
		if !found {
			return u, fmt.Errorf("user %q: no such user in /etc/passwd", userArg)
		}
	}
	if hasGroup {
		if gid, ok := parseID(groupArg); ok {
			u.GID = gid
			return u, nil
		}
		for _, g := range group {
			if g.name == groupArg {
				u.GID = g.gid
				return u, nil
			}
		}
		return u, fmt.Errorf("group %q: no such group in /etc/group", groupArg)
	}
	if name == "" {
		return u, nil
	}
	seen := map[uint32]bool{}
	for _, g := range group {
		for _, m := range g.members {
			if m == name && !seen[g.gid] {
				seen[g.gid] = true
				u.AdditionalGids = append(u.AdditionalGids, g.gid)
			}
		}
	}
	return u, nil
}

package unpack

import (
	"bytes"
	"fmt"

	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// resolveUser turns the image config's User ("", name, uid, and either
// with ":group" or ":gid") into ids with the image's /etc/passwd and
// /etc/group contents, as runc, containerd and Docker do (the same
// library): a name must be in passwd; a uid need not be (then gid 0); a
// group given explicitly replaces the primary group and drops
// supplementary groups, else the user's memberships in group are its
// supplementary groups. Ids above 2^31-1 are refused, as containerd does.
func resolveUser(spec string, passwd, group []byte) (specs.User, error) {
	eu, err := user.GetExecUser(spec, nil, bytes.NewReader(passwd), bytes.NewReader(group))
	if err != nil {
		return specs.User{}, fmt.Errorf("user %q: %w", spec, err)
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid)}
	for _, g := range eu.Sgids {
		u.AdditionalGids = append(u.AdditionalGids, uint32(g))
	}
	return u, nil
}

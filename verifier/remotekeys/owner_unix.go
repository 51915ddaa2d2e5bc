//go:build unix

package remotekeys

import (
	"errors"
	"io/fs"
	"syscall"
)

// checkOwner refuses a cache file that another user owns: its owner may
// write it whatever its mode, and so choose the keys this process trusts
// (a file planted in a shared directory, or left by another service). The
// file is this process's own: writeFileAtomic creates it.
func checkOwner(fi fs.FileInfo, euid int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("owner unknown")
	}
	if int64(st.Uid) != int64(euid) {
		return errors.New("owned by another user")
	}
	return nil
}

package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// fileMode is the mode of every stored file: values may hold private keys.
const fileMode = 0o600

// dirMode is the mode of directories the store creates.
const dirMode = 0o700

// writeFileDurable replaces name with data so that a crash leaves either
// the old content or the new, and the new content is on disk when it
// returns nil: temporary file in the same directory, write, fsync, rename,
// fsync the directory. certmagic.FileStorage.Store does all this except
// the directory fsync, so a rename it acknowledged can be lost on power
// failure. If the directory fsync fails, the old content is put back (as
// far as possible), so that an error means nothing changed.
func writeFileDurable(name string, data []byte) error {
	dir := filepath.Dir(name)
	if err := mkdirAllDurable(dir); err != nil {
		return err
	}
	prev, err := os.ReadFile(name)
	existed := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := replaceFile(name, data); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		if existed {
			_ = replaceFile(name, prev)
		} else {
			_ = os.Remove(name)
		}
		_ = syncDir(dir)
		return err
	}
	return nil
}

// removeFileDurable deletes name and syncs its directory. A missing file is
// not an error. If the directory fsync fails, the file is put back.
func removeFileDurable(name string) error {
	prev, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(name)
	if err := syncDir(dir); err != nil {
		_ = replaceFile(name, prev)
		_ = syncDir(dir)
		return err
	}
	return nil
}

// replaceFile writes data to a synced temporary file next to name and
// renames it over name. The directory is not synced.
func replaceFile(name string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600; Chmod states it against any umask or
	// platform default.
	if err = f.Chmod(fileMode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// mkdirAllDurable creates dir and its missing parents, syncing each new
// directory's parent so that the new entries survive a crash.
func mkdirAllDurable(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent == dir {
		return err
	}
	if err := mkdirAllDurable(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

//go:build linux

package realclients

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// committedTree extracts the repository's committed tree (git archive
// HEAD) into a temp dir: what a new user gets from a clean clone, without
// uncommitted files or build products.
func committedTree(t testing.TB) string {
	t.Helper()
	paths := need(t, "git", "tar")
	dir := t.TempDir()
	archive := exec.Command(paths["git"], "-C", moduleRoot, "archive", "--format=tar", "HEAD")
	var tarball, stderr bytes.Buffer
	archive.Stdout, archive.Stderr = &tarball, &stderr
	if err := archive.Run(); err != nil {
		unavailable(t, "git archive HEAD in "+moduleRoot+": "+err.Error()+": "+stderr.String())
	}
	extract := exec.Command(paths["tar"], "-x", "-C", dir)
	extract.Stdin = &tarball
	if out, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("the committed tree has no go.mod: %v", err)
	}
	return dir
}

// readmeBlocks returns the code blocks of the committed README.md.
func readmeBlocks(t testing.TB, tree string) []codeBlock {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(tree, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := codeBlocks(string(md))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	return blocks
}

// shellCommands returns the commands of the README's sh blocks; section,
// when not empty, keeps only the blocks under that heading.
func shellCommands(t testing.TB, blocks []codeBlock, section string) [][]string {
	t.Helper()
	var cmds [][]string
	for _, b := range blocks {
		if (b.lang != "sh" && b.lang != "bash" && b.lang != "console") || (section != "" && b.section != section) {
			continue
		}
		parsed, err := parseCommands(b.text)
		if err != nil {
			t.Fatalf("README.md, %q block %q: %v", b.section, b.text, err)
		}
		cmds = append(cmds, parsed...)
	}
	return cmds
}

package hash64

import "testing"

// The values are part of the cluster contract: nodes built from
// different versions must map a chash key to the same node.
func TestStable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"", Mix(Offset)},
		{"127.0.0.1", Mix(AddBytes(Offset, []byte("127.0.0.1")))},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
	// FNV-1a of "a" is a published test vector
	if got := AddString(Offset, "a"); got != 0xaf63dc4c8601ec8c {
		t.Errorf("FNV-1a(a) = %#x", got)
	}
}

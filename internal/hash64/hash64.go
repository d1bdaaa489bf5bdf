// Package hash64 is the one 64-bit string hash of the project: FNV-1a,
// stable across processes (so that every instance of a cluster maps a
// chash key to the same node), then MurmurHash3's fmix64 finalizer so
// that similar strings spread. No seed: the inputs come from the Admin
// API, and a collision only costs a longer list, never a wrong answer.
package hash64

// Offset is FNV-1a's 64-bit offset basis, the start of a hash.
const Offset = 14695981039346656037

const prime = 1099511628211

// AddString folds s into the FNV-1a state h.
func AddString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}

// AddBytes folds b into the FNV-1a state h.
func AddBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= prime
	}
	return h
}

// Mix is MurmurHash3's fmix64.
func Mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// String is the finished hash of s.
func String(s string) uint64 { return Mix(AddString(Offset, s)) }

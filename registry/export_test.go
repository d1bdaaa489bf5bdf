package registry

// Applied returns the revision of the Shared store the objects reflect.
func (r *Registry) Applied() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sh.applied
}

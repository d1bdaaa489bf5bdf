package balancer

// Tries is the number of nodes picked with this Context so far.
func (c *Context) Tries() int { return c.tried.n }

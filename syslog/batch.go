package syslog

import (
	"time"
)

// run is the Client's one worker: the batch processor's timers and its
// execution of batches (apisix/utils/batch-processor.lua), sending
// through s. Nothing else touches s.
func (c *Client) run(s *sender) {
	defer close(c.done)
	defer s.closeConn()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		select {
		case <-c.wake:
		case <-timer.C:
			armed = false
			c.onTimer()
		case <-c.stop:
			c.drain(s)
			return
		}
		// The buffer timer runs while entries wait in the batch being
		// filled: create_buffer_timer at the first push.
		c.mu.Lock()
		waiting := len(c.cur) > 0
		c.mu.Unlock()
		if waiting && !armed {
			timer.Reset(c.cfg.InactiveTimeout)
			armed = true
		}
		for b := c.nextBatch(); b != nil; b = c.nextBatch() {
			c.execute(s, b)
		}
	}
}

// onTimer is flush_buffer: the batch being filled goes out once no entry
// came for InactiveTimeout or its first entry is BufferDuration old;
// otherwise the timer is armed again by run.
func (c *Client) onTimer() {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) > 0 && (now.Sub(c.lastT) >= c.cfg.InactiveTimeout || now.Sub(c.firstT) >= c.cfg.BufferDuration) {
		c.ready = append(c.ready, c.cur)
		c.cur = nil
	}
}

func (c *Client) nextBatch() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ready) == 0 {
		return nil
	}
	b := c.ready[0]
	c.ready[0] = nil
	c.ready = c.ready[1:]
	return b
}

// execute is execute_func: the batch goes to the socket logger, and is
// offered again MaxRetryCount times RetryDelay apart while it refuses it.
func (c *Client) execute(s *sender, batch [][]byte) {
	defer c.finished(len(batch))
	for retry := 0; ; retry++ {
		err := s.log(batch)
		if err == nil {
			return
		}
		if retry >= c.cfg.MaxRetryCount {
			c.st.dropped.Add(int64(len(batch)))
			c.errorf("Batch Processor[%s] exceeded the max_retry_count[%d] dropping the entries: %v",
				c.cfg.Name, retry+1, err)
			return
		}
		select {
		case <-c.stop:
			c.st.dropped.Add(int64(len(batch)))
			return
		case <-time.After(c.cfg.RetryDelay):
		}
	}
}

// finished takes n processed entries off the backlog.
func (c *Client) finished(n int) {
	c.mu.Lock()
	c.pending -= n
	c.mu.Unlock()
}

// drain is the shutdown: everything pending that fits under the drop
// limit is buffered and gets one flush attempt (resty.logger.socket
// flushes when the worker exits); the rest is counted as dropped.
func (c *Client) drain(s *sender) {
	c.mu.Lock()
	if len(c.cur) > 0 {
		c.ready = append(c.ready, c.cur)
		c.cur = nil
	}
	c.mu.Unlock()
	for b := c.nextBatch(); b != nil; b = c.nextBatch() {
		n := 0
		for _, m := range b {
			n += len(m)
		}
		if s.size+n <= c.cfg.DropLimit {
			s.add(b, n)
		} else {
			c.st.dropped.Add(int64(len(b)))
		}
		c.finished(len(b))
	}
	s.flush()
	c.st.dropped.Add(int64(len(s.buf)))
}

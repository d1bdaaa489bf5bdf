//go:build linux && !portable

package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Which copy stage costs the host less per byte depends on the CPU, and
// most of the difference is paid outside the proxy: on the Intel Xeon of
// docs/performance-run-intel.md splicing made the load generator's own
// socket writes 1.7x dearer (the sender writes into pages the pipe still
// holds), so the proxy looked cheaper while the host paid more; on the AMD
// EPYC of docs/performance-run-amd.md splicing cost the host 0.69x what
// the buffer did. A proxy cannot see its peers' CPU, so tcp_copy auto
// measures a whole pipeline inside the process, as the Linux kernel picks
// its RAID and checksum routines at boot: a sender writing as iperf3 and
// most clients do (large writes from one hot buffer), the proxy's own copy,
// and a receiver, on loopback TCP, each on a locked OS thread whose CPU
// time (CLOCK_THREAD_CPUTIME_ID, kernel time included) is summed.
const (
	// calibrationBytes go through the pipeline per round: enough for
	// the socket buffers and pipes to reach a steady state, small
	// enough that the whole calibration costs about 0.1 s of CPU once
	// per process.
	calibrationBytes = 24 << 20
	// calibrationRounds per mode, alternated; the cheapest round of each
	// counts, so that a burst of other work in one round does not decide.
	calibrationRounds = 3
	// calibrationWrite is the sender's and the receiver's chunk
	// (iperf3's default).
	calibrationWrite = 128 << 10
	// spliceMargin: splice is chosen only when it costs at most this
	// fraction of the buffer's CPU, since a near tie is noise and the
	// buffer stage holds no descriptors.
	spliceMargin = 0.9
)

// calibrate measures both stages and publishes the choice, which every
// connection in auto mode takes from its next chunk on.
func (rt *Runtime) calibrate() {
	c, err := calibrateCopy()
	if err != nil {
		rt.Logger().Warn("tcp_copy auto: could not measure the copy stages; copying through the buffer", zap.Error(err))
		return
	}
	rt.copies.calibrated.Store(&c)
	rt.Logger().Info("tcp_copy auto: measured the host's CPU per byte with each copy stage",
		zap.Stringer("chosen", c.Chosen),
		zap.Duration("buffer_cpu_per_gb", c.Buffer),
		zap.Duration("splice_cpu_per_gb", c.Splice))
}

// calibrateCopy measures both stages and chooses one (chooseCopy). Its
// pipes are its own, closed at the end, so that the runtime's pool holds
// only what connections left there.
func calibrateCopy() (CopyCalibration, error) {
	var stages copyStages
	defer stages.pipes.Drain()
	best := map[CopyMode]time.Duration{}
	for range calibrationRounds {
		for _, m := range []CopyMode{CopyBuffer, CopySplice} {
			cpu, err := pipelineCPU(m, &stages, calibrationBytes)
			if err != nil {
				return CopyCalibration{}, fmt.Errorf("%v stage: %w", m, err)
			}
			if b, ok := best[m]; !ok || cpu < b {
				best[m] = cpu
			}
		}
	}
	perGB := func(d time.Duration) time.Duration { return d * 1e9 / calibrationBytes }
	c := CopyCalibration{Buffer: perGB(best[CopyBuffer]), Splice: perGB(best[CopySplice])}
	c.Chosen = chooseCopy(c.Buffer, c.Splice)
	return c, nil
}

// chooseCopy picks the stage of the cheaper pipeline, the buffer on a
// near tie.
func chooseCopy(buffer, splice time.Duration) CopyMode {
	if splice > 0 && float64(splice) <= spliceMargin*float64(buffer) {
		return CopySplice
	}
	return CopyBuffer
}

// pipelineCPU moves n bytes from a sender through the proxy's copy in
// mode m to a receiver, over loopback TCP, and returns the CPU time the
// three threads took.
func pipelineCPU(m CopyMode, stages *copyStages, n int) (time.Duration, error) {
	sender, proxyIn, err := loopbackPair()
	if err != nil {
		return 0, err
	}
	defer sender.Close()
	defer proxyIn.Close()
	proxyOut, receiver, err := loopbackPair()
	if err != nil {
		return 0, err
	}
	defer proxyOut.Close()
	defer receiver.Close()

	var (
		wg    sync.WaitGroup
		total atomic.Int64
		errs  = make([]error, 3)
	)
	// bounded: a pipeline that stalls is cut by the deadline
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range []net.Conn{sender, proxyIn, proxyOut, receiver} {
		_ = c.SetDeadline(deadline)
	}
	onThread := func(i int, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := threadCPU()
			errs[i] = f()
			total.Add(int64(threadCPU() - start))
		}()
	}
	onThread(0, func() error {
		buf := make([]byte, calibrationWrite)
		for left := n; left > 0; left -= len(buf) {
			if _, err := sender.Write(buf[:min(left, len(buf))]); err != nil {
				return err
			}
		}
		return sender.(*net.TCPConn).CloseWrite()
	})
	onThread(1, func() error {
		l := &link{a: proxyIn, b: proxyOut, mode: m, stages: stages}
		c := newRawCopier(proxyOut, proxyIn, l, new(atomic.Int64))
		if c == nil {
			return errors.New("no raw copy on loopback TCP")
		}
		if err := c.copy(); err != io.EOF {
			return err
		}
		return c.closeWrite()
	})
	onThread(2, func() error {
		buf := make([]byte, calibrationWrite)
		got := 0
		for {
			k, err := receiver.Read(buf)
			got += k
			if err == io.EOF {
				if got != n {
					return io.ErrUnexpectedEOF
				}
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	wg.Wait()
	return time.Duration(total.Load()), errors.Join(errs...)
}

// loopbackPair returns both ends of a new TCP connection on 127.0.0.1.
func loopbackPair() (net.Conn, net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	b, err := ln.Accept()
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// threadCPU is the calling thread's CPU time, user and kernel.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Command echo is the quick start's backend: a TCP and UDP echo server,
// and a client that sends one message through the proxy and prints the
// answer. It needs nothing but Go.
//
//	go run ./examples/echo                          # serves 127.0.0.1:1995, TCP and UDP
//	go run ./examples/echo -listen 127.0.0.1:2000
//	go run ./examples/echo -dial 127.0.0.1:9101 hello
//	go run ./examples/echo -dial 127.0.0.1:9211 -udp hello
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:1995", "the address to serve, TCP and UDP")
	dial := flag.String("dial", "", "send the arguments to this address, print the answer and exit")
	udp := flag.Bool("udp", false, "with -dial: send one UDP datagram instead of a TCP stream")
	flag.Parse()
	if *dial != "" {
		if err := send(*dial, *udp, strings.Join(flag.Args(), " ")); err != nil {
			fmt.Fprintln(os.Stderr, "echo:", err)
			os.Exit(1)
		}
		return
	}
	log.Fatal(serve(*listen))
}

// serve echoes every TCP connection and every UDP datagram on addr until
// its listener fails.
func serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	log.Printf("echo: serving tcp/%s and udp/%s", ln.Addr(), pc.LocalAddr())
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				log.Fatal(err)
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

// send writes msg to addr and prints what comes back.
func send(addr string, udp bool, msg string) error {
	network := "tcp"
	if udp {
		network = "udp"
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if udp {
		buf = make([]byte, 64<<10)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		buf = buf[:n]
	} else if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	fmt.Println(string(buf))
	return nil
}

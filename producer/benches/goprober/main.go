// Command goprober is the benchmark's Go peer: a small prober on Go's net/http, the stack of
// blackbox_exporter's HTTP probe. One goroutine per site behind a semaphore, keep-alives off (each
// probe a fresh connection), no TLS session cache (each HTTPS probe a full handshake), one deadline
// per probe, the body read up to a limit, phase timings from httptrace, and one JSON line per probe
// on stdout, as websentry's dry run prints.
//
//	go build -o goprober . && ./goprober -sites urls.txt -concurrency 1000 -cafile ca.pem
//
// Only the standard library is used.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

type timings struct {
	Connect  *float64 `json:"connect"`
	TLS      *float64 `json:"tls"`
	TTFB     *float64 `json:"ttfb"`
	Transfer *float64 `json:"transfer"`
}

type report struct {
	URL        string    `json:"url"`
	Code       int       `json:"code"`
	ResponseMs float64   `json:"response_ms"`
	Match      *string   `json:"regexp_match"`
	CheckedAt  time.Time `json:"checked_at"`
	Error      *string   `json:"error"`
	Timings    timings   `json:"timings_ms"`
	BodyBytes  int64     `json:"body_bytes"`
	Resumed    bool      `json:"tls_resumed"`
}

func ms(d time.Duration) *float64 {
	v := float64(d.Microseconds()) / 1000
	return &v
}

func main() {
	sitesFile := flag.String("sites", "", "file of URLs, one a line")
	concurrency := flag.Int("concurrency", 100, "probes at once at most")
	timeout := flag.Duration("timeout", 30*time.Second, "deadline of one probe")
	bodyLimit := flag.Int64("body-limit", 1<<20, "body bytes read at most")
	caFile := flag.String("cafile", "", "PEM file of extra trusted CAs")
	pattern := flag.String("regexp", "", "pattern searched in each body")
	flag.Parse()

	urls, err := readLines(*sitesFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goprober:", err)
		os.Exit(2)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil || !roots.AppendCertsFromPEM(pem) {
			fmt.Fprintln(os.Stderr, "goprober: cannot use", *caFile, err)
			os.Exit(2)
		}
	}
	var matcher *regexp.Regexp
	if *pattern != "" {
		matcher = regexp.MustCompile(*pattern)
	}
	transport := &http.Transport{
		DisableKeepAlives:   true,
		ForceAttemptHTTP2:   true,
		TLSClientConfig:     &tls.Config{RootCAs: roots, ClientSessionCache: nil},
		TLSHandshakeTimeout: *timeout,
		MaxIdleConns:        0,
	}
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) > 10 {
				return fmt.Errorf("more than 10 redirects")
			}
			return nil
		},
	}

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	var outMu sync.Mutex
	encoder := json.NewEncoder(out)
	semaphore := make(chan struct{}, *concurrency)
	var wg sync.WaitGroup
	for _, url := range urls {
		wg.Add(1)
		go func(url string) {
			defer wg.Done()
			semaphore <- struct{}{}
			r := probe(client, url, *timeout, *bodyLimit, matcher)
			<-semaphore
			outMu.Lock()
			_ = encoder.Encode(r)
			outMu.Unlock()
		}(url)
	}
	wg.Wait()
	out.Flush()
}

func probe(client *http.Client, url string, timeout time.Duration, bodyLimit int64, matcher *regexp.Regexp) report {
	r := report{URL: url, CheckedAt: time.Now().UTC()}
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var connectStart, tlsStart, wroteRequest time.Time
	trace := &httptrace.ClientTrace{
		ConnectStart: func(_, _ string) { connectStart = time.Now() },
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				r.Timings.Connect = ms(time.Since(connectStart))
			}
		},
		TLSHandshakeStart: func() { tlsStart = time.Now() },
		TLSHandshakeDone: func(state tls.ConnectionState, err error) {
			if err == nil {
				r.Timings.TLS = ms(time.Since(tlsStart))
				r.Resumed = state.DidResume
			}
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { wroteRequest = time.Now() },
		GotFirstResponseByte: func() { r.Timings.TTFB = ms(time.Since(wroteRequest)) },
	}
	request, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
	if err == nil {
		request.Header.Set("User-Agent", "goprober")
		var response *http.Response
		response, err = client.Do(request)
		if err == nil {
			r.Code = response.StatusCode
			transferStart := time.Now()
			var body []byte
			if matcher != nil {
				body, err = io.ReadAll(io.LimitReader(response.Body, bodyLimit))
				r.BodyBytes = int64(len(body))
			} else {
				r.BodyBytes, err = io.Copy(io.Discard, io.LimitReader(response.Body, bodyLimit))
			}
			response.Body.Close()
			r.Timings.Transfer = ms(time.Since(transferStart))
			if err == nil && matcher != nil {
				if found := matcher.FindSubmatch(body); found != nil {
					var joined string
					if len(found) == 1 {
						joined = string(found[0])
					} else {
						parts := make([]string, 0, len(found)-1)
						for _, group := range found[1:] {
							parts = append(parts, string(group))
						}
						joined = strings.Join(parts, "")
					}
					r.Match = &joined
				}
			}
		}
	}
	if err != nil {
		message := err.Error()
		r.Error = &message
	}
	r.ResponseMs = *ms(time.Since(started))
	return r
}

func readLines(path string) ([]string, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var lines []string
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		if line := strings.TrimSpace(scanner.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	return lines, scanner.Err()
}

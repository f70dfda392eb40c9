// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package deploymentexporter

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/deploylens/deploylens/internal/deployevent"
)

const chromiumPath = "/usr/bin/chromium"

// requireBinary skips the test when path is missing, unless CI is set: there
// the test suite must run it, so a missing binary fails.
func requireBinary(t *testing.T, path, debianPackage string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := fmt.Sprintf("%s not found: install the Debian package %s (apt-get install -y %s)", path, debianPackage, debianPackage)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this test may not be skipped")
	}
	t.Skip(msg + "; skipped because CI is unset")
}

// cdpClient is a minimal Chrome DevTools Protocol client: one page target,
// request/response by id, events ignored.
type cdpClient struct {
	ws     *websocket.Conn
	nextID int
}

type cdpMessage struct {
	ID     int             `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params any             `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func (c *cdpClient) call(method string, params any) (json.RawMessage, error) {
	c.nextID++
	id := c.nextID
	if err := websocket.JSON.Send(c.ws, cdpMessage{ID: id, Method: method, Params: params}); err != nil {
		return nil, err
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		var msg cdpMessage
		if err := websocket.JSON.Receive(c.ws, &msg); err != nil {
			return nil, err
		}
		if msg.ID != id {
			continue // an event, or an answer to an earlier call
		}
		if msg.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, msg.Error.Message)
		}
		return msg.Result, nil
	}
}

// eval evaluates a JavaScript expression in the page and returns its value.
func (c *cdpClient) eval(expr string) (any, error) {
	raw, err := c.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return nil, err
	}
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, err
	}
	if res.ExceptionDetails != nil {
		return nil, errors.New(res.ExceptionDetails.Text)
	}
	return res.Result.Value, nil
}

// startChromium runs headless Chromium with remote debugging on a free port
// and returns a CDP client attached to its page. Chromium and its children
// run in a process group of their own, killed when the test ends.
func startChromium(t *testing.T) *cdpClient {
	t.Helper()
	requireBinary(t, chromiumPath, "chromium")
	profile := t.TempDir()
	cmd := exec.Command(chromiumPath,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--remote-allow-origins=http://127.0.0.1", "--window-size=1400,900", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := os.Create(filepath.Join(profile, "chromium.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = stderr.Close()
	})

	// Chromium writes the port it chose to DevToolsActivePort.
	var port string
	require.Eventually(t, func() bool {
		f, err := os.Open(filepath.Join(profile, "DevToolsActivePort"))
		if err != nil {
			return false
		}
		defer func() { _ = f.Close() }()
		sc := bufio.NewScanner(f)
		if sc.Scan() {
			port = strings.TrimSpace(sc.Text())
		}
		return port != ""
	}, 30*time.Second, 50*time.Millisecond, "Chromium did not open its DevTools port; see %s", filepath.Join(profile, "chromium.log"))

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var wsURL string
	require.Eventually(t, func() bool {
		resp, err := client.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		var targets []struct {
			Type                 string `json:"type"`
			WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
		}
		if json.NewDecoder(resp.Body).Decode(&targets) != nil {
			return false
		}
		for _, tg := range targets {
			if tg.Type == "page" && tg.WebSocketDebuggerURL != "" {
				wsURL = tg.WebSocketDebuggerURL
				return true
			}
		}
		return false
	}, 15*time.Second, 50*time.Millisecond)

	cfg, err := websocket.NewConfig(wsURL, "http://127.0.0.1")
	require.NoError(t, err)
	ws, err := websocket.DialConfig(cfg)
	require.NoError(t, err)
	ws.MaxPayloadBytes = 64 << 20
	t.Cleanup(func() { _ = ws.Close() })
	return &cdpClient{ws: ws}
}

// waitFor evaluates expr until it returns want.
func waitFor(t *testing.T, c *cdpClient, expr string, want any, msg string) {
	t.Helper()
	var last any
	var lastErr error
	ok := assert.Eventually(t, func() bool {
		last, lastErr = c.eval(expr)
		return lastErr == nil && last == want
	}, 20*time.Second, 100*time.Millisecond, msg)
	if !ok {
		t.Logf("last value of %s: %#v (err %v)", expr, last, lastErr)
	}
}

// The status page, in headless Chromium: it renders the known deployment
// with values in their units, sparklines that start where the data starts,
// one recommendation per deployment and alerts with their evidence; the
// score changes without a reload when a new health data point arrives.
func TestStatusPageInChromium(t *testing.T) {
	f := statusFixture(t, 200*time.Millisecond)
	ctx := context.Background()
	// An indicator alert that recommends nothing, beside the deployment's rollback.
	regression := criticalAlert()
	regression.name, regression.severity, regression.fingerprint, regression.recommendation = "IndicatorRegression", "warning", "fp-ratio-1", "none"
	regression.indicator, regression.value, regression.baseline, regression.lower, regression.upper = "error_ratio", 0.027, 0.008, 0, 0.022
	regression.body = "checkout 1.4.2: error ratio above its baseline."
	require.NoError(t, f.c.consumeLogs(ctx, alertLogs(regression)))
	// A deployment with no health data yet.
	cart := deployevent.Event{Service: "cart", Namespace: "shop", Environment: "production", Version: "2.0.0", ID: "gh-77", State: deployevent.StateStarted, Timestamp: f.clock.Now()}
	require.NoError(t, f.c.consumeLogs(ctx, lifecycleLogsOf(cart)))
	page := startChromium(t)

	_, err := page.call("Page.navigate", map[string]any{"url": f.base + "/"})
	require.NoError(t, err)
	const row = `document.querySelector('tr[data-key="shop/checkout/production"]')`
	waitFor(t, page, row+` !== null`, true, "the deployment row appears")
	waitFor(t, page, row+`.querySelector('.score').textContent`, "74", "the health score is shown")

	text := func(expr string) string {
		v, err := page.eval(expr)
		require.NoError(t, err)
		s, _ := v.(string)
		return s
	}
	assert.Contains(t, text(row+`.querySelector('.service').textContent`), "checkout")
	assert.Equal(t, "during", text(row+`.querySelector('.phase').textContent`))
	assert.Equal(t, "1.4.2from 1.4.1", text(row+`.querySelector('.version').textContent`))
	assert.Equal(t, "fail", text(row+`.querySelector('.verdict .badge').textContent`))
	assert.Equal(t, "4m 0s", text(row+`.querySelector('.duration').textContent`))
	indicator := func(name string) string { return row + `.querySelector('[data-indicator="` + name + `"]')` }
	assert.Equal(t, "error ratio 4 % vs 1 %", text(indicator("error_ratio")+`.querySelector('span').textContent`))
	assert.Equal(t, "latency p95 213 ms vs 200 ms", text(indicator("latency_p95")+`.querySelector('span').textContent`))
	assert.Equal(t, "request rate 25.5 req/s vs 24 req/s", text(indicator("request_rate")+`.querySelector('span').textContent`))
	count := func(expr string) float64 {
		v, err := page.eval(expr)
		require.NoError(t, err)
		n, _ := v.(float64)
		return n
	}
	assert.Equal(t, 2.0, count(indicator("error_ratio")+`.querySelectorAll('svg polyline').length`), "a value line and a baseline line")
	assert.Equal(t, 2.0, count(indicator("request_rate")+`.querySelectorAll('svg circle').length`), "one point each: a dot each")
	assert.Equal(t, 0.0, count(indicator("request_rate")+`.querySelectorAll('svg polyline').length`))

	// The score line starts at the left edge with the first score (a minute
	// after the deployment started, not at 0 from its start) and ends at the
	// right edge; its y range is the scores' (80 top, 74 bottom).
	firstX := func(svg string) float64 {
		return count(`parseFloat(` + svg + `.querySelector('polyline').getAttribute('points').split(' ')[0].split(',')[0])`)
	}
	scoreSVG := row + `.querySelector('.health svg')`
	assert.Equal(t, 2.0, firstX(scoreSVG), "the first score is at the left edge")
	assert.Equal(t, t0.Add(time.Minute).UTC().Format("2006-01-02T15:04:05.000Z"), text(scoreSVG+`.getAttribute('data-t0')`))
	assert.Equal(t, "2.0,2.0 30.7,8.0 59.3,14.0 88.0,20.0", text(scoreSVG+`.querySelector('polyline').getAttribute('points')`))
	assert.Equal(t, 2.0, firstX(indicator("error_ratio")+`.querySelector('svg')`))

	// One recommendation, the deployment's; alerts under it show evidence, not one of their own.
	assert.Equal(t, "recommends rollback", text(row+`.querySelector('.recommendation').textContent`))
	assert.Equal(t, 1.0, count(row+`.querySelectorAll('.recommendation').length`))
	group := `document.querySelector('#alerts tr.group[data-key="shop/checkout/production"]')`
	assert.Contains(t, text(group+`.textContent`), "deployment gh-1234")
	assert.Equal(t, 1.0, count(`document.querySelectorAll('#alerts tr.group').length`), "both alerts are under one deployment")
	assert.Equal(t, "DeploymentErrorRateRegression", text(`document.querySelector('#alerts tr[data-fingerprint="fp-err-1"] .alertname').textContent`))
	ratioAlert := `document.querySelector('#alerts tr[data-fingerprint="fp-ratio-1"]')`
	assert.Equal(t, "error ratio 2.7 % vs baseline 0.8 % (expected ≤ 2.2 %); anomaly score 0.97, confidence 99 % (two_proportion)",
		text(ratioAlert+`.querySelector('.evidence').textContent`))
	assert.NotContains(t, text(`document.querySelector('#alerts').textContent`), "none")
	assert.NotContains(t, text(`document.querySelector('#alerts').textContent`), "rollback")

	// No health data: no score, not 0.
	cartRow := `document.querySelector('tr[data-key="shop/cart/production"]')`
	assert.Equal(t, "no health data", text(cartRow+`.querySelector('.score').textContent`))
	assert.Equal(t, 0.0, count(cartRow+`.querySelectorAll('.health svg *').length`), "an empty score line")
	assert.Equal(t, "no action recommended", text(cartRow+`.querySelector('.recommendation').textContent`))
	// A judgement that withholds its score: the page says what it is, not 0.
	now := f.clock.Now()
	f.c.mu.Lock()
	f.c.st.services[serviceKey{Namespace: "shop", Service: "cart", Environment: "production"}].Health = health{
		Score: math.NaN(), Verdict: deployevent.VerdictInconclusive, At: now, ReceivedAt: now,
	}
	f.c.mu.Unlock()
	waitFor(t, page, cartRow+`.querySelector('.score').textContent`, "inconclusive", "no score, the health verdict instead")
	assert.Contains(t, text(`document.querySelector('#recent tbody').textContent`), "succeeded")
	assert.Equal(t, "live", text(`document.getElementById('conn').textContent`))

	// Mark this page instance: a reload would lose the mark.
	_, err = page.eval(`window.__deploylensMark = 'same page'`)
	require.NoError(t, err)

	f.clock.Advance(time.Minute)
	f.health(testHealth{score: 41, verdict: deployevent.VerdictUnhealthy, recommendation: deployevent.RecommendRollback})
	waitFor(t, page, row+`.querySelector('.score').textContent`, "41", "the new score is shown without a reload")
	assert.Equal(t, "same page", text(`window.__deploylensMark`), "the page was not reloaded")
	assert.Contains(t, text(row+`.querySelector('.verdict').textContent`), "recommends rollback")

	if dir := os.Getenv("DEPLOYLENS_SCREENSHOT_DIR"); dir != "" {
		raw, err := page.call("Page.captureScreenshot", map[string]any{"format": "png"})
		require.NoError(t, err)
		var shot struct {
			Data string `json:"data"`
		}
		require.NoError(t, json.Unmarshal(raw, &shot))
		png, err := base64.StdEncoding.DecodeString(shot.Data)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "status-page.png"), png, 0o600))
	}
}

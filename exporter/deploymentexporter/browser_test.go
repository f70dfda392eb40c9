//go:build linux

package deploymentexporter

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

// The status page, in headless Chromium: it renders the known deployment,
// and the score changes without a reload when a new health data point
// arrives.
func TestStatusPageInChromium(t *testing.T) {
	f := statusFixture(t, 200*time.Millisecond)
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
	assert.Equal(t, "error_rate 0.04 vs 0.01", text(row+`.querySelector('[data-indicator="error_rate"] span').textContent`))
	n, err := page.eval(row + `.querySelectorAll('[data-indicator="error_rate"] svg polyline').length`)
	require.NoError(t, err)
	assert.Equal(t, 2.0, n, "a value line and a baseline line")
	assert.Equal(t, "DeploymentErrorRateRegression", text(`document.querySelector('#alerts tr[data-fingerprint="fp-err-1"] .alertname').textContent`))
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

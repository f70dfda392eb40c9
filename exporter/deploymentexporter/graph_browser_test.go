// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package deploymentexporter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The status page draws the neighbourhood of an active deployment in
// headless Chromium: its caller on the left, the service in the middle and
// what it calls on the right, coloured by health and edge score, with each
// edge's call rate and error ratio; a new evaluation redraws it in place.
func TestStatusPageGraphInChromium(t *testing.T) {
	f := graphFixture(t, 200*time.Millisecond)
	page := startChromium(t)
	_, err := page.call("Page.navigate", map[string]any{"url": f.base + "/"})
	require.NoError(t, err)

	const fig = `document.querySelector('figure.graph[data-key="shop/checkout/production"]')`
	waitFor(t, page, fig+` !== null && `+fig+`.getAttribute('data-state')`, "drawn", "the neighbourhood of checkout is drawn")

	text := func(expr string) string {
		t.Helper()
		v, err := page.eval(expr)
		require.NoError(t, err)
		s, _ := v.(string)
		return s
	}
	list := func(expr string) []string {
		t.Helper()
		v, err := page.eval(`Array.from(` + expr + `).map(function (e) { return e.textContent; })`)
		require.NoError(t, err)
		var out []string
		for _, x := range v.([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	assert.Equal(t, []string{"frontend"}, list(fig+`.querySelectorAll('svg g.node[data-role="caller"] text.name')`))
	assert.Equal(t, []string{"checkout"}, list(fig+`.querySelectorAll('g.node[data-role="focus"] text.name')`))
	assert.Equal(t, []string{"postgresql/orders", "payment"}, list(fig+`.querySelectorAll('g.node[data-role="callee"] text.name')`),
		"callees in id order: the external database, then payment")
	assert.Equal(t, []string{"score 74"}, list(fig+`.querySelectorAll('g.node[data-role="focus"] text.sub')`))
	assert.Equal(t, []string{"external", "no health data"}, list(fig+`.querySelectorAll('g.node[data-role="callee"] text.sub')`))
	assert.Contains(t, text(fig+`.querySelector('figcaption').textContent`), "1 caller edge regressed")

	class := func(expr string) string { return text(expr + `.getAttribute('class')`) }
	assert.Equal(t, "node healthy focus", class(fig+`.querySelector('g.node[data-role="focus"]')`))
	assert.Equal(t, "node external", class(fig+`.querySelector('g.node[data-id="external:production:postgresql/orders"]')`))
	assert.Equal(t, "node unknown", class(fig+`.querySelector('g.node[data-role="callee"][data-id="shop/payment/production"]')`))

	edge := func(caller, callee string) string {
		return fig + `.querySelector('g.edge[data-caller="` + caller + `"][data-callee="` + callee + `"]')`
	}
	toPayment := edge("shop/checkout/production", "shop/payment/production")
	assert.Equal(t, "25.5 req/s · 1.2 % err", text(toPayment+`.querySelector('text.label').textContent`))
	assert.Equal(t, "edge unhealthy", class(toPayment), "score 35: below the unhealthy cut-off")
	fromFrontend := edge("shop/frontend/production", "shop/checkout/production")
	assert.Equal(t, "40 req/s · 0.2 % err", text(fromFrontend+`.querySelector('text.label').textContent`))
	assert.Equal(t, "edge healthy", class(fromFrontend))
	toDB := edge("shop/checkout/production", "external:production:postgresql/orders")
	assert.Equal(t, "80 req/s", text(toDB+`.querySelector('text.label').textContent`), "no error ratio written: none shown")
	assert.Equal(t, "edge unknown", class(toDB), "not judged")
	n, err := page.eval(fig + `.querySelectorAll('g.edge').length`)
	require.NoError(t, err)
	assert.Equal(t, 3.0, n, "only the edges of checkout are drawn (frontend → payment is not)")

	// The callers' column is left of the service, the callees' right of it.
	x := func(id string) float64 {
		v, err := page.eval(`parseFloat(` + fig + `.querySelector('g.node[data-id="` + id + `"] rect').getAttribute('x'))`)
		require.NoError(t, err)
		return v.(float64)
	}
	assert.Less(t, x("shop/frontend/production"), x("shop/checkout/production"))
	assert.Less(t, x("shop/checkout/production"), x("shop/payment/production"))

	// A new evaluation of the edge is redrawn without a reload.
	_, err = page.eval(`window.__deploylensMark = 'same page'`)
	require.NoError(t, err)
	f.clock.Advance(time.Minute)
	regressed := checkoutEdges()[0]
	regressed.indicators["request_rate"] = [4]float64{12, 24, 18, 30}
	regressed.indicators["error_ratio"] = [4]float64{0.2, 0.001, 0, 0.004}
	regressed.score = 12
	require.NoError(t, f.c.consumeMetrics(context.Background(), dependencyMetrics(checkoutKey, f.clock.Now(), regressed)))
	waitFor(t, page, toPayment+`.querySelector('text.label').textContent`, "12 req/s · 20 % err", "the new rate and error ratio are shown")
	assert.Equal(t, "same page", text(`window.__deploylensMark`))

	if dir := os.Getenv("DEPLOYLENS_SCREENSHOT_DIR"); dir != "" {
		raw, err := page.call("Page.captureScreenshot", map[string]any{"format": "png"})
		require.NoError(t, err)
		var shot struct {
			Data string `json:"data"`
		}
		require.NoError(t, json.Unmarshal(raw, &shot))
		png, err := base64.StdEncoding.DecodeString(shot.Data)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "status-page-graph.png"), png, 0o600))
	}
}

// Starts GraphiQL on the page served at /graphiql. A file of its own, not an
// inline script: the page's CSP runs scripts from this origin only.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  // The endpoint is a path on this origin; subscriptions go over a
  // WebSocket to the same path (graphql-transport-ws, the client GraphiQL
  // bundles), wss: when the page came over HTTPS.
  var url = new URL(root.getAttribute("data-endpoint"), window.location.href);
  var subscriptionUrl = new URL(url.href);
  subscriptionUrl.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({
    url: url.href,
    subscriptionUrl: subscriptionUrl.href,
  });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
    })
  );
})();

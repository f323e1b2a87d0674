// The API page's only script: Swagger UI (served by this service from BentoML's package) on
// this service's own document. No validator badge (it would call validator.swagger.io), no
// URL bar: nothing is fetched from any other host.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "./docs.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
    withCredentials: false,
  });
});

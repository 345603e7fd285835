// The API page (/api/v1/docs): Swagger UI over the app's own OpenAPI document.
// Loaded as an external module so the page runs under CSP script-src 'self'.
import SwaggerUI from "swagger-ui-dist/swagger-ui-es-bundle.js";

const root = document.getElementById("swagger-ui");
if (root) {
  SwaggerUI({
    domNode: root,
    url: root.dataset.specUrl,
    // No call to swagger.io's validator badge: nothing leaves our origin.
    validatorUrl: null,
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    displayOperationId: true,
    filter: true,
    persistAuthorization: false,
    // Requests are made with the bearer token typed into "Authorize", never cookies.
    withCredentials: false,
  });
}

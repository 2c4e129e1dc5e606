/// The service's OpenAPI document, compiled into the binary from the top-level
/// `openapi.yaml`, so that what `/openapi.yaml` serves is always the file in the package.
enum OpenAPIDocument {
    static let bytes: [UInt8] = PackageResources.openapi_yaml
}

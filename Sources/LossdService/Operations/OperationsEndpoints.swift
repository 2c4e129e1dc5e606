import LossdHTTP
import LossdKernels

/// The routes an orchestrator and an operator call: liveness, readiness, the build, the
/// Prometheus metrics and the OpenAPI document. All are inline (answered on the I/O
/// thread, never waiting on a worker or a database), so they answer under any load.
enum OperationsEndpoints {
    static func register(on router: inout Router, state: ServiceState) {
        router.add("GET", "/healthz", cost: .inline) { _ throws(ServiceError) in
            LossdService.json(["status": "ok"])
        }
        router.add("GET", "/readyz", cost: .inline) { route throws(ServiceError) in
            readiness(state: state, gauges: route.context.gauges())
        }
        router.add("GET", "/v1/version", cost: .inline) { _ throws(ServiceError) in
            LossdService.json([
                "name": "lossd",
                "version": .string(LossdService.version),
                "blas": .string(BLAS.libraryDescription),
                "simd": .string(KernelLevel.summary),
                "kernels": .string(KernelLevel.current.name),
            ])
        }
        router.add("GET", "/metrics", cost: .inline) { route throws(ServiceError) in
            HTTPResponse(
                status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                body: state.metrics.render(
                    gauges: route.context.gauges(), storeEntries: state.store.sampledCounts(),
                    collections: LossdService.storedCollections))
        }
        router.add("GET", "/openapi.yaml", cost: .inline) { _ throws(ServiceError) in
            HTTPResponse(status: .ok, headers: ["Content-Type": "application/yaml"], body: OpenAPIDocument.bytes)
        }
    }

    /// 200 when the store is open, the server takes work and is not saturated (every
    /// general worker busy with requests waiting: a load balancer should send new work
    /// elsewhere until it drains); else 503 with `Retry-After`. Reads flags only.
    static func readiness(state: ServiceState, gauges: ServerGauges) -> HTTPResponse {
        let opened = state.storeReady.load(ordering: .acquiring)
        let full = opened && state.store.attachedStoreIsFull
        let store = opened && !state.store.attachedStoreIsUnavailable && !full
        let accepting = state.acceptingWork()
        let saturated = gauges.saturated
        let body: JSONValue = [
            "status": .string(store && accepting && !saturated ? "ready" : "not_ready"),
            "store": .string(store ? "open" : full ? "full" : opened ? "unreachable" : "closed"),
            "accepting": .bool(accepting),
            "saturated": .bool(saturated),
        ]
        guard store && accepting && !saturated else {
            var response = LossdService.json(body, status: .serviceUnavailable)
            response.headers.add(name: "Retry-After", value: "1")
            return response
        }
        return LossdService.json(body)
    }
}

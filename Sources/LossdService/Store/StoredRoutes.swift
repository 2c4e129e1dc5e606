import Dispatch
import LossdHTTP
import LossdJSON
import LossdStore
import Logging
import Synchronization

/// The routes of one stored kind: `GET {path}`, `GET|PUT|DELETE {path}/{name}`, and the
/// reads and conditional writes its other endpoints make (a fit that stores its result,
/// an apply or predict by name). Every kind behaves alike: names, ETags, `If-Match`,
/// `If-None-Match`, 304, 412, 503 while the store cannot serve, 507 while it is full.
enum StoredRoutes<Resource: StoredResource> {
    static func register(on router: inout Router, slot: StoreSlot) {
        router.add("GET", Resource.path) { _ throws(ServiceError) in try list(slot: slot) }
        router.add("GET", Resource.path + "/{name}") { route throws(ServiceError) in
            try show(route.parameters["name"] ?? "", route.request, slot: slot)
        }
        router.add("PUT", Resource.path + "/{name}") { route throws(ServiceError) in
            try put(route.parameters["name"] ?? "", route, slot: slot)
        }
        router.add("DELETE", Resource.path + "/{name}") { route throws(ServiceError) in
            try delete(route.parameters["name"] ?? "", route.request, slot: slot)
        }
    }

    static func list(slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        let store = try slot.current()
        let summaries = try StoreOperation.perform("list") { () throws(StoreError) in try store.list(in: Resource.collection) }
        return LossdService.json([Resource.listMember: .array(summaries.map(Resource.summary))])
    }

    static func show(_ name: String, _ request: HTTPRequest, slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        try Resource.checkName(name, field: nil)
        let store = try slot.current()
        guard let stored = try StoreOperation.perform("get", { () throws(StoreError) in try store.fetch(name, in: Resource.collection) })
        else { throw Resource.notFound(name) }
        let etag = EntityTag.header(for: stored.revision)
        // A client holding this revision already gets 304 without the body (RFC 9110 §13.1.2:
        // weak comparison, as `If-None-Match` always uses).
        if let condition = EntityTagCondition.parse(request.headers.values(named: "If-None-Match")),
            !WritePreconditions(ifNoneMatch: condition).allow(current: stored.revision)
        {
            return HTTPResponse(status: .notModified, headers: ["ETag": etag])
        }
        return HTTPResponse(status: .ok, headers: ["Content-Type": "application/json", "ETag": etag], body: Array(stored.document.json.utf8))
    }

    static func put(_ name: String, _ route: RouteRequest, slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        try Resource.checkName(name, field: nil)
        let store = try slot.current()
        let document = try Resource.document(named: name, from: try RequestBody.object(route))
        let preconditions = preconditions(of: route.request)
        let result = try StoreOperation.perform("put") { () throws(StoreError) in
            try store.put(document, in: Resource.collection, preconditions: preconditions)
        }
        switch result {
        case .preconditionFailed(let current):
            throw Resource.preconditionFailed(name, current: current)
        case let .written(outcome, revision):
            var response = HTTPResponse(
                status: outcome == .created ? .created : .ok, headers: ["Content-Type": "application/json"], body: Array(document.json.utf8))
            if outcome == .created { response.headers.add(name: "Location", value: Resource.location(name)) }
            response.headers.add(name: "ETag", value: EntityTag.header(for: revision))
            return response
        }
    }

    static func delete(_ name: String, _ request: HTTPRequest, slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        try Resource.checkName(name, field: nil)
        let store = try slot.current()
        let preconditions = preconditions(of: request)
        let result = try StoreOperation.perform("delete") { () throws(StoreError) in
            try store.delete(name, in: Resource.collection, preconditions: preconditions)
        }
        switch result {
        case .deleted: return HTTPResponse(status: .noContent)
        case .notFound: throw Resource.notFound(name)
        case .preconditionFailed(let current): throw Resource.preconditionFailed(name, current: current)
        }
    }

    /// The stored document called `name` (404 when there is none).
    static func load(_ name: String, slot: StoreSlot) throws(ServiceError) -> StoredDocument {
        let store = try slot.current()
        guard let stored = try StoreOperation.perform("get", { () throws(StoreError) in try store.get(name, in: Resource.collection) })
        else { throw Resource.notFound(name) }
        return stored
    }

    /// Stores what a fit produced under its `name`, as a PUT would (`If-Match` /
    /// `If-None-Match: *` make it conditional), and turns the fit's answer into the 201
    /// with `Location` and `ETag`.
    static func storeFitted(
        _ document: StoredDocument, answer: HTTPResponse, request: HTTPRequest, store: any DocumentStore
    ) throws(ServiceError) -> HTTPResponse {
        let preconditions = preconditions(of: request)
        let written = try StoreOperation.perform("put") { () throws(StoreError) in
            try store.put(document, in: Resource.collection, preconditions: preconditions)
        }
        switch written {
        case .preconditionFailed(let current):
            throw Resource.preconditionFailed(document.name, current: current)
        case .written(_, let revision):
            var response = answer
            response.status = .created
            response.headers.add(name: "Location", value: Resource.location(document.name))
            response.headers.add(name: "ETag", value: EntityTag.header(for: revision))
            return response
        }
    }

    /// The `If-Match` / `If-None-Match` conditions of a write request.
    static func preconditions(of request: HTTPRequest) -> WritePreconditions {
        WritePreconditions(
            ifMatch: EntityTagCondition.parse(request.headers.values(named: "If-Match")),
            ifNoneMatch: EntityTagCondition.parse(request.headers.values(named: "If-None-Match")))
    }
}

/// Runs store operations for the endpoints: a store failure is logged in full and
/// answered without internals, 503 (the client may retry; nothing was half-written) or
/// 507 on a full disk.
enum StoreOperation {
    private static let logger = Logger(label: "lossd.store")

    static func perform<T>(_ operation: String, _ body: () throws(StoreError) -> T) throws(ServiceError) -> T {
        do {
            return try body()
        } catch {
            if let note = failureLogNote() { logger.error("store \(operation) failed: \(error)\(note)") }
            if case .full = error {
                // Retrying will not help until space is freed (DELETE still works).
                throw ServiceError(
                    status: .insufficientStorage, code: "store_full",
                    detail: "the store's disk is full; delete stored calibrators or laws, or free space, then retry the \(operation)")
            }
            var failure = ServiceError(
                status: .serviceUnavailable, code: "store_unavailable", detail: "the store could not complete the \(operation)")
            failure.headers = [("Retry-After", "1")]
            throw failure
        }
    }

    /// Store failures are logged at most once a second: while a database is down every
    /// store request fails, and a line for each would flood the log. Nil means "skip this
    /// one"; otherwise the suffix says how many were skipped since the last line.
    private static func failureLogNote() -> String? {
        let now = DispatchTime.now().uptimeNanoseconds
        return failureLog.withLock { state -> String? in
            guard now >= state.nextLine else {
                state.skipped += 1
                return nil
            }
            defer {
                state.skipped = 0
                state.nextLine = now + 1_000_000_000
            }
            return state.skipped > 0 ? " (and \(state.skipped) more store failures in the last second, not logged)" : ""
        }
    }

    private struct FailureLogState {
        var nextLine: UInt64 = 0
        var skipped = 0
    }

    private static let failureLog = Mutex(FailureLogState())
}

import LossdStore
import Synchronization

/// Holds the service's document store (SQLite or PostgreSQL) once start-up has opened it;
/// every stored kind (calibrators, scaling laws) reaches it through here.
final class StoreSlot: Sendable {
    private let store = Mutex<(any DocumentStore)?>(nil)

    func attach(_ store: any DocumentStore) { self.store.withLock { $0 = store } }

    var isAttached: Bool { store.withLock { $0 != nil } }

    /// Whether an attached store says it cannot serve now (a PostgreSQL store whose
    /// database is unreachable). Never blocks: `/readyz` runs on the I/O thread.
    var attachedStoreIsUnavailable: Bool { (store.withLock { $0 }).map { !$0.isAvailable } ?? false }

    /// Whether the attached store's writes fail for want of space (never blocks).
    var attachedStoreIsFull: Bool { (store.withLock { $0 })?.isFull ?? false }

    /// The attached store's counts per collection for `/metrics` (never blocks on a network).
    func sampledCounts() -> [String: Int]? { store.withLock { $0 }?.sampledCounts() }

    /// The store, or 503 while none is open.
    func current() throws(ServiceError) -> any DocumentStore {
        guard let store = store.withLock({ $0 }) else {
            var error = ServiceError(status: .serviceUnavailable, code: "not_ready", detail: "the store is not open")
            error.headers = [("Retry-After", "1")]
            throw error
        }
        return store
    }
}

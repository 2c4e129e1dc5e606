import LossdHTTP
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Lets the service ask the server (created after it) whether it still accepts work.
final class ServerGate: Sendable {
    private let server = Mutex<HTTPServer?>(nil)

    func attach(_ server: HTTPServer) { self.server.withLock { $0 = server } }

    var acceptingWork: Bool { server.withLock { $0?.isAcceptingWork ?? false } }
}

final class SignalCounter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() -> Int { count.add(1, ordering: .relaxed).newValue }
}

/// The data directory must exist and be writable before the service reports ready.
enum DataDirectory {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func prepare(_ path: String) throws(Failure) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o750) != 0 && errno != EEXIST {
                throw Failure(description: "mkdir \(current): \(String(cString: strerror(errno)))")
            }
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw Failure(description: "\(path) is not a directory")
        }
        guard access(path, W_OK | X_OK) == 0 else {
            throw Failure(description: "\(path) is not writable: \(String(cString: strerror(errno)))")
        }
    }
}

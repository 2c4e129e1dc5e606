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

/// The memory the process may use, for the default memory budget.
enum MemoryLimit {
    /// A quarter of the cgroup limit (v2 `memory.max`, else v1 `memory.limit_in_bytes`)
    /// when one is set, else of physical memory; at least 256 MiB.
    static var defaultInflightBytes: Int {
        max(256 << 20, (cgroupLimit ?? physicalMemory) / 4)
    }

    static var physicalMemory: Int {
        Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The cgroup memory limit, nil when unlimited or unknown: the process's own cgroup
    /// (from /proc/self/cgroup; v2 `memory.max`, v1 `memory.limit_in_bytes`), then the
    /// root files, which are the container's own under a cgroup namespace.
    static var cgroupLimit: Int? {
        var candidates: [String] = []
        if let lines = readFile("/proc/self/cgroup") {
            for line in lines.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3 else { continue }
                let path = parts[2] == "/" ? "" : String(parts[2])
                if parts[0] == "0" && parts[1].isEmpty {
                    candidates.append("/sys/fs/cgroup\(path)/memory.max")
                } else if parts[1].split(separator: ",").contains("memory") {
                    candidates.append("/sys/fs/cgroup/memory\(path)/memory.limit_in_bytes")
                }
            }
        }
        candidates += ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        for path in candidates {
            // One word (a number, or "max") between white space.
            guard let words = readFile(path)?.split(whereSeparator: \.isWhitespace), words.count == 1, let value = Int(words[0])
            else { continue }
            // "max" (v2) does not parse; v1 reports "no limit" as a huge page-aligned number.
            if value > 0 && value < (1 << 60) && value < physicalMemory { return value }
        }
        return nil
    }

    private static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var text = ""
        var buffer = [CChar](repeating: 0, count: 512)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            text += String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return text
    }

}

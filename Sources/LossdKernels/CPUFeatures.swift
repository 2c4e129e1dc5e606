/// The SIMD instruction set this binary was compiled for, reported by `/v1/version`
/// so that a user can tell an AVX2 release build from a generic one.
public enum CompiledSIMD {
    public static var description: String {
        #if arch(x86_64)
            #if LOSSD_AVX2
                return "x86_64 AVX2 (haswell)"
            #else
                return "x86_64 SSE2 (generic)"
            #endif
        #elseif arch(arm64)
            return "arm64 NEON"
        #else
            return "generic"
        #endif
    }
}

// Generated from Tests/LossdServiceTests/Vectors/calib_vectors.json, section two_pass_softmax
// (expected values to 12 decimals; docs/test-vectors.md).

enum TwoPassVectors {
    struct Case: Sendable {
        let name: String
        let x: [Double]
        let logSumExp: Double
        let softmax: [Double]
    }

    static let cases: [Case] = [
        Case(name: "small", x: [1.0, 2.0, 3.0, 4.0], logSumExp: 4.440189698561, softmax: [0.03205860328, 0.087144318742, 0.23688281809, 0.643914259888]),
        Case(name: "large_positive", x: [1000.0, 1001.0, 999.0, 1002.5, -3.0], logSumExp: 1002.789240264486, softmax: [0.061467895523, 0.167087063434, 0.022612775055, 0.748832265988, 0.0]),
        Case(name: "large_negative", x: [-10000.0, -9999.0, -10002.0], logSumExp: -9998.650987783232, softmax: [0.259496460342, 0.705384512698, 0.035119026959]),
        Case(name: "mixed_17", x: [1.517, 14.999, -29.877, 20.808, -12.549, -47.537, -19.431, 17.957, 9.968, -34.424, 18.56, -2.64, 12.752, 9.968, -34.704, 10.53, -18.207], logSumExp: 20.962254628304, softmax: [3.589e-09, 0.002571528967, 0.0, 0.857053763079, 0.0, 0.0, 0.0, 0.049526141965, 1.6797934e-05, 0.0, 0.090513648427, 5.6e-11, 0.000271851491, 1.6797934e-05, 0.0, 2.9466556e-05, 0.0]),
        Case(name: "single", x: [42.0], logSumExp: 42.0, softmax: [1.0]),
        Case(name: "with_underflow", x: [0.0, -200.0, -1000.0, 5.0], logSumExp: 5.006715348489, softmax: [0.006692850924, 0.0, 0.0, 0.993307149076]),
    ]
}

import Foundation
import LossdTestSupport
import Testing

/// `/v1/scaling/fit` and `/v1/scaling/predict` through the real binary: fits recover a
/// known law and predict its extrapolation, derived quantities match their closed forms,
/// and every kind of bad request is a 422 with its pointer.
@Suite("lossd /v1/scaling over real sockets")
struct ScalingEndpointTests {
    func post(_ lossd: LossdProcess, _ path: String, _ object: [String: Any]) throws -> (status: Int, json: [String: Any]) {
        let body = try JSONSerialization.data(withJSONObject: object)
        let client = try lossd.connect()
        try client.send("POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n")
        try client.send(Array(body))
        let response = try client.readResponse()
        return (response.status, response.json ?? [:])
    }

    /// L(x) = 1.69 + (8.8e6 / x)^0.34 at 9 sizes over four decades.
    static let powerLawPoints: [[String: Double]] = (0..<9).map { i in
        let x = 1e6 * pow(10, Double(i) / 2)
        return ["x": x, "loss": 1.69 + pow(8.8e6 / x, 0.34)]
    }

    @Test func aPowerLawFitRecoversTheLawAndPredictsItsExtrapolation() throws {
        let lossd = try LossdProcess()
        let fit = try post(lossd, "/v1/scaling/fit", ["law": "power_law", "data": Self.powerLawPoints, "bootstrap": ["samples": 20, "seed": 7]])
        #expect(fit.status == 200, "\(fit.json)")
        let params = try #require(fit.json["params"] as? [String: Double])
        #expect(abs(params["L_inf"]! / 1.69 - 1) < 1e-3)
        #expect(abs(params["x0"]! / 8.8e6 - 1) < 1e-3)
        #expect(abs(params["alpha"]! / 0.34 - 1) < 1e-3)
        let report = try #require(fit.json["fit"] as? [String: Any])
        #expect(report["n_points"] as? Int == 9)
        #expect((report["objective"] as? Double ?? 1) < 1e-12)
        #expect((fit.json["options"] as? [String: Any])?["irreducible"] as? Bool == true)
        let intervals = try #require((fit.json["intervals"] as? [String: Any])?["params"] as? [String: [Double]])
        #expect(intervals["alpha"].map { $0[0] <= params["alpha"]! + 1e-9 && params["alpha"]! <= $0[1] + 1e-9 } == true)
        #expect((fit.json["derived"] as? [String: Any])?["reducible"] as? [Double] != nil)

        let x = 1e11
        let predict = try post(
            lossd, "/v1/scaling/predict", ["law": "power_law", "params": params, "x": [x], "target_loss": 1.8])
        #expect(predict.status == 200, "\(predict.json)")
        let loss = try #require((predict.json["loss"] as? [Double])?.first)
        #expect(abs(loss / (1.69 + pow(8.8e6 / x, 0.34)) - 1) < 1e-5)
        let derived = try #require(predict.json["derived"] as? [String: Any])
        // x_for_loss = x0 · (target − L_inf)^(−1/alpha)
        let expected = params["x0"]! * pow(1.8 - params["L_inf"]!, -1 / params["alpha"]!)
        #expect(abs((derived["x_for_loss"] as? Double ?? 0) / expected - 1) < 1e-12)
        let below = try post(lossd, "/v1/scaling/predict", ["law": "power_law", "params": params, "target_loss": 1.0])
        #expect((below.json["derived"] as? [String: Any])?["x_for_loss"] is NSNull)
    }

    @Test func chinchillaAndNmtDerivedQuantitiesFollowTheirClosedForms() throws {
        let lossd = try LossdProcess()
        let (e, a, b, alpha, beta) = (1.69, 406.4, 410.7, 0.34, 0.28)
        let chinchilla = try post(
            lossd, "/v1/scaling/predict",
            ["law": "chinchilla", "params": ["E": e, "A": a, "B": b, "alpha": alpha, "beta": beta], "n": [1e9], "d": [2e10], "compute": [1e21]])
        #expect(chinchilla.status == 200, "\(chinchilla.json)")
        #expect(abs(((chinchilla.json["loss"] as? [Double])?.first ?? 0) - (e + a / pow(1e9, alpha) + b / pow(2e10, beta))) < 1e-12)
        let allocation = try #require(((chinchilla.json["derived"] as? [String: Any])?["compute_optimal"] as? [[String: Double]])?.first)
        let g = pow(alpha * a / (beta * b), 1 / (alpha + beta))
        let nOpt = g * pow(1e21 / 6, beta / (alpha + beta))
        #expect(abs(allocation["n_opt"]! / nOpt - 1) < 1e-12)
        #expect(abs(allocation["d_opt"]! / (1e21 / 6 / nOpt) - 1) < 1e-12)

        let nmt = try post(
            lossd, "/v1/scaling/predict",
            [
                "law": "nmt", "params": ["L_inf": 0.9, "beta": 1.2, "pe": 0.25, "pd": 0.45, "n_encoder_ref": 1e8, "n_decoder_ref": 1e8],
                "n_total": [3e8],
            ])
        #expect(nmt.status == 200, "\(nmt.json)")
        let split = try #require(((nmt.json["derived"] as? [String: Any])?["optimal_split"] as? [[String: Double]])?.first)
        #expect(abs(split["n_encoder_opt"]! / (3e8 * 0.25 / 0.7) - 1) < 1e-12)
    }

    @Test func anAnnealingFitOnACosineRunPredictsAWSDRun() throws {
        let lossd = try LossdProcess()
        let (warmup, steps, peak) = (20, 400, 3e-4)
        func law(_ lr: [Double]) -> [Double] {
            // L0 + A·S1^−alpha − C·S2 with λ = 0.999, S1 and S2 from step W+1.
            var s1 = 0.0, momentum = 0.0, s2 = 0.0
            return lr.enumerated().map { s, eta in
                guard s >= warmup else { return 3.0 }
                let previous = s > warmup ? lr[s - 1] : eta
                s1 += eta
                momentum = 0.999 * momentum + (previous - eta)
                s2 += momentum
                return 2.1 + 0.45 * pow(s1, -0.51) - 0.35 * s2
            }
        }
        func warm(_ s: Int) -> Double { peak * Double(s + 1) / Double(warmup) }
        let cosine: [Double] = (0..<steps).map { s -> Double in
            if s < warmup { return warm(s) }
            let phase = Double.pi * Double(s - warmup) / Double(steps - warmup)
            return 1e-5 + (peak - 1e-5) * 0.5 * (1 + cos(phase))
        }
        let wsd: [Double] = (0..<steps).map { s -> Double in
            if s < warmup { return warm(s) }
            if s < steps * 9 / 10 { return peak }
            return peak * Double(steps - s) / Double(steps / 10)
        }
        let curve: [String: Any] = ["lr": cosine, "loss": law(cosine)]
        let fit = try post(lossd, "/v1/scaling/fit", ["law": "lr_annealing", "params": ["warmup_steps": warmup], "data": [curve]])
        #expect(fit.status == 200, "\(fit.json)")
        var params = try #require(fit.json["params"] as? [String: Any])
        params["warmup_steps"] = warmup
        let schedule: [String: Any] = ["lr": wsd]
        let predict = try post(lossd, "/v1/scaling/predict", ["law": "lr_annealing", "params": params, "curve": schedule])
        #expect(predict.status == 200, "\(predict.json)")
        let predicted = try #require(predict.json["loss"] as? [Double])
        let truth = Array(law(wsd)[warmup...])
        #expect(predicted.count == truth.count)
        let worst = zip(predicted, truth).map { abs($0 / $1 - 1) }.max() ?? 1
        #expect(worst < 1e-5, "largest relative error \(worst)")
        #expect(((predict.json["derived"] as? [String: Any])?["steps"] as? [Int])?.first == warmup + 1)
    }

    @Test(arguments: [
        ("/v1/scaling/fit", #"{"law": "power_lw", "data": [{"x": 1, "loss": 1}]}"#, "/law"),
        ("/v1/scaling/fit", #"{"law": "power_law"}"#, "/data"),
        ("/v1/scaling/fit", #"{"law": "power_law", "data": [{"x": 1e6, "loss": 3}, {"x": 1e7, "loss": 2}]}"#, "/data"),
        ("/v1/scaling/fit", #"{"law": "power_law", "data": [{"x": 1e6, "loss": 3}, {"x": -1, "loss": 2}, {"x": 1e8, "loss": 1.8}, {"x": 1e9, "loss": 1.7}]}"#, "/data/1/x"),
        ("/v1/scaling/fit", #"{"law": "power_law", "data": [{"x": 1e6, "los": 3}]}"#, "/data/0/los"),
        ("/v1/scaling/fit", #"{"law": "power_law", "params": {"irreducable": false}, "data": [{"x": 1e6, "loss": 3}]}"#, "/params/irreducable"),
        ("/v1/scaling/fit", #"{"law": "chinchilla", "params": {"huber_delta": 0}, "data": [{"n": 1, "d": 1, "loss": 1}]}"#, "/params/huber_delta"),
        ("/v1/scaling/fit", #"{"law": "power_law", "bootstrap": {"samples": 0}, "data": [{"x": 1e6, "loss": 3}]}"#, "/bootstrap/samples"),
        ("/v1/scaling/fit", #"{"law": "power_law", "name": "a/b", "data": [{"x": 1e6, "loss": 3}]}"#, "/name"),
        ("/v1/scaling/fit", #"{"law": "lr_annealing", "data": [{"lr": [0.1, 0.1], "loss": [3, 2, 1]}]}"#, "/data/0/loss"),
        ("/v1/scaling/fit", #"{"law": "lr_annealing", "params": {"decay": 1}, "data": [{"lr": [0.1], "loss": [3]}]}"#, "/params/decay"),
        ("/v1/scaling/predict", #"{"law": "power_law", "params": {"x0": 1, "alpha": 0.3}, "x": [1]}"#, "/params/L_inf"),
        ("/v1/scaling/predict", #"{"law": "power_law", "params": {"L_inf": 1, "x0": 1, "alpha": -0.3}, "x": [1]}"#, "/params/alpha"),
        ("/v1/scaling/predict", #"{"law": "power_law", "params": {"L_inf": 1, "x0": 1, "alpha": 0.3}, "x": [0]}"#, "/x/0"),
        ("/v1/scaling/predict", #"{"law": "chinchilla", "params": {"E": 1, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}, "n": [1]}"#, "/d"),
        ("/v1/scaling/predict", #"{"law": "nmt", "params": {"L_inf": 1, "beta": 1, "pe": 0.3, "pd": 0.3}, "n_total": [1e8]}"#, "/params/n_encoder_ref"),
        ("/v1/scaling/predict", #"{"law": "lr_annealing", "params": {"L0": 2, "A": 1, "alpha": 0.5, "C": 0.1}}"#, "/curve"),
        ("/v1/scaling/predict", #"{"law": "lr_annealing", "params": {"L0": 2, "A": 1, "alpha": 0.5, "C": 0.1}, "curve": {"lr": []}}"#, "/curve/lr"),
        ("/v1/scaling/predict", #"{"law": "lr_annealing", "params": {"L0": 2, "A": 1, "alpha": 0.5, "C": 0.1, "warmup_steps": 2}, "curve": {"lr": [0.1, 0.1]}}"#, "/curve/lr"),
        ("/v1/scaling/predict", #"{"law": "lr_annealing", "params": {"L0": 2, "A": 1, "alpha": 0.5, "C": 0.1}, "curve": {"lr": [0.1, 0.1], "steps": [2, 1]}}"#, "/curve/steps/1"),
    ])
    func badRequestsAre422WithTheirPointer(_ path: String, _ json: String, _ field: String) throws {
        let lossd = try LossdProcess()
        let body = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let answer = try post(lossd, path, body)
        #expect(answer.status == 422, "\(answer.json)")
        #expect(answer.json["field"] as? String == field, "\(answer.json)")
    }
}

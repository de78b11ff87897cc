using CamEngine.Autodiff;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using NUnit.Framework;
using static CamEngine.Tests.Methods.FixtureData;

namespace CamEngine.Tests.Methods;

/// <summary>
/// The paper convention's Grad-CAM++ uses the closed form of Eq. 19 for Y = exp(S) through piecewise-linear
/// layers. Here it is checked against the paper's general definition computed with exact higher-order
/// derivatives (<see cref="HigherOrder.Diagonal"/> of exp(logit)):
/// <c>alpha = Y'' / (2 Y'' + sum_ab(A) Y''')</c>, <c>w_k = sum_ij alpha ReLU(dY/dA) / e^S</c> (the common factor
/// e^S is dropped by the closed form, as documented).
/// </summary>
[TestFixture]
public sealed class GradCamPlusPlusExactTests
{
    [TestCaseSource(typeof(FixtureData), nameof(FixtureData.Cases))]
    public void Paper_closed_form_equals_the_exact_third_order_definition(string modelName, string image)
    {
        var reference = Load(modelName, image);
        using var model = DeviceModel.Load(ModelFor(modelName), TestDevice.Ilgpu);
        var input = Npy.Read(FixturePaths.Input(image));
        using var x = TestDevice.Ilgpu.Upload(input);
        using var pass = model.Forward(x);
        int c = reference.TargetClass;
        double eS = Math.Exp(TestDevice.Ilgpu.Download(pass.Output)[c]);
        foreach (var key in new[] { "L0", "L1" })
        {
            string layer = reference.Layer(key);
            var a = TestDevice.Ilgpu.Download(pass[layer]);
            var y = HigherOrder.Diagonal(model, pass, 0, layer, ScoreFunction.Exp(ScoreFunction.Logit(c)));
            var shape = pass[layer].Shape;
            int channels = shape[1], plane = shape[2] * shape[3];
            var exact = new double[channels];
            for (int k = 0; k < channels; k++)
            {
                double sumA = 0;
                for (int j = 0; j < plane; j++)
                    sumA += a[k * plane + j];
                for (int j = 0; j < plane; j++)
                {
                    int i = k * plane + j;
                    double denominator = 2 * y.Second[i] + sumA * y.Third[i];
                    double alpha = y.Second[i] == 0 || denominator == 0 ? 0 : y.Second[i] / denominator;
                    exact[k] += alpha * Math.Max(y.First[i], 0) / eS;
                }
            }
            var g = reference[$"{key}.grad"];
            var ours = new GradCamPlusPlus().WeightsFor(reference[$"{key}.act"], g, channels, plane, Convention.Paper)!;
            double scale = exact.Max(Math.Abs);
            TensorAssert.Close(ours.Select(v => (double)v).ToArray(), exact, 1e-4 * scale, 1e-3, $"{key} paper Grad-CAM++ weights");
        }
    }
}

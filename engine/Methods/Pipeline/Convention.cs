namespace CamEngine.Methods;

/// <summary>
/// Which definition a method follows where the papers and the libraries disagree (formula variants,
/// order of ReLU / normalization / resize, bilinear convention, layer fusion). See the README's table.
/// </summary>
public enum Convention
{
    /// <summary>The paper's definition.</summary>
    Paper,

    /// <summary>pytorch-grad-cam 1.5.5 (jacobgil/pytorch-grad-cam), the default.</summary>
    PytorchGradCam,

    /// <summary>TorchCAM 0.5 (frgfm/torch-cam).</summary>
    TorchCam,
}

"""torch: spec -> nn.Module with torchvision's names, ONNX export, pretrained weights."""

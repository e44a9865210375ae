/*
 * core/nn/model_arch.c — the three architectures of DESIGN.md "Models", as
 * node lists with PyTorch's module names:
 *   convnet  nn.Sequential features (indices 0,1,4,5,8,9 hold parameters)
 *   resnet18 the CIFAR ResNet-18 of the paper (kuangliu layout: 3×3 stem,
 *            no max-pool, BasicBlocks with `shortcut` = 1×1 conv + BN)
 *   resnet20 He et al.'s CIFAR ResNet-20 shape, same naming scheme.
 *   resnet18_imagenet torchvision's resnet18 (7×7/2 stem, 3×3/2 max-pool,
 *            `downsample` = 1×1 conv + BN), for 224×224-class inputs.
 * Each ends with global average pooling, `linear` to embed_dim and L2 norm.
 */
#include <stdio.h>

#include "nn/model_impl.h"

#define TRY(x) do { if ((a = (x)) < 0) return -1; } while (0)

int model_build_convnet(struct isif_model *m)
{
	int a = 0;
	TRY(model_add_conv(m, "features.0", a, m->in_channels, 32, 3, 1, 1));
	TRY(model_add_bn(m, "features.1", a, 32));
	TRY(model_add_simple(m, NODE_RELU, a, -1));
	TRY(model_add_simple(m, NODE_MAXPOOL, a, -1));
	TRY(model_add_conv(m, "features.4", a, 32, 64, 3, 1, 1));
	TRY(model_add_bn(m, "features.5", a, 64));
	TRY(model_add_simple(m, NODE_RELU, a, -1));
	TRY(model_add_simple(m, NODE_MAXPOOL, a, -1));
	TRY(model_add_conv(m, "features.8", a, 64, 128, 3, 1, 1));
	TRY(model_add_bn(m, "features.9", a, 128));
	TRY(model_add_simple(m, NODE_RELU, a, -1));
	TRY(model_add_simple(m, NODE_AVGPOOL, a, -1));
	TRY(model_add_linear(m, "linear", a, 128, m->embed_dim));
	TRY(model_add_simple(m, NODE_L2NORM, a, -1));
	return 0;
}

/* out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); returns out's id.
 * The projection shortcut's modules are `<prefix>.<proj>.0` and `.1`. */
static int add_block(struct isif_model *m, const char *prefix, const char *proj, int x,
		     int in_planes, int planes, int stride)
{
	char name[64];
	int a = x, shortcut = x;

	snprintf(name, sizeof name, "%s.conv1", prefix);
	TRY(model_add_conv(m, name, a, in_planes, planes, 3, stride, 1));
	snprintf(name, sizeof name, "%s.bn1", prefix);
	TRY(model_add_bn(m, name, a, planes));
	TRY(model_add_simple(m, NODE_RELU, a, -1));
	snprintf(name, sizeof name, "%s.conv2", prefix);
	TRY(model_add_conv(m, name, a, planes, planes, 3, 1, 1));
	snprintf(name, sizeof name, "%s.bn2", prefix);
	TRY(model_add_bn(m, name, a, planes));
	int main_path = a;
	if (stride != 1 || in_planes != planes) {
		snprintf(name, sizeof name, "%s.%s.0", prefix, proj);
		TRY(model_add_conv(m, name, x, in_planes, planes, 1, stride, 0));
		snprintf(name, sizeof name, "%s.%s.1", prefix, proj);
		TRY(model_add_bn(m, name, a, planes));
		shortcut = a;
	}
	TRY(model_add_simple(m, NODE_ADD, main_path, shortcut));
	TRY(model_add_simple(m, NODE_RELU, a, -1));
	return a;
}

int model_add_basic_block(struct isif_model *m, const char *prefix, int x,
			  int in_planes, int planes, int stride)
{
	return add_block(m, prefix, "shortcut", x, in_planes, planes, stride);
}

int model_build_resnet(struct isif_model *m, const int *widths, const int *blocks,
		       int n_stages, int stem, int imagenet)
{
	int a = 0;
	if (imagenet)
		TRY(model_add_conv(m, "conv1", a, m->in_channels, stem, 7, 2, 3));
	else
		TRY(model_add_conv(m, "conv1", a, m->in_channels, stem, 3, 1, 1));
	TRY(model_add_bn(m, "bn1", a, stem));
	TRY(model_add_simple(m, NODE_RELU, a, -1));
	if (imagenet)
		TRY(model_add_simple(m, NODE_MAXPOOL3, a, -1));
	int in_planes = stem;
	for (int s = 0; s < n_stages; s++) {
		for (int b = 0; b < blocks[s]; b++) {
			char prefix[32];
			snprintf(prefix, sizeof prefix, "layer%d.%d", s + 1, b);
			int stride = (s > 0 && b == 0) ? 2 : 1;
			TRY(add_block(m, prefix, imagenet ? "downsample" : "shortcut", a,
				      in_planes, widths[s], stride));
			in_planes = widths[s];
		}
	}
	TRY(model_add_simple(m, NODE_AVGPOOL, a, -1));
	TRY(model_add_linear(m, "linear", a, in_planes, m->embed_dim));
	TRY(model_add_simple(m, NODE_L2NORM, a, -1));
	return 0;
}

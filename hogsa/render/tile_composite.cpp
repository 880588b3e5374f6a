// Front-to-back alpha compositing of tile-binned Gaussians on the CPU, forward and backward, with
// gsplat 1.5's rules (hogsa/render/alpha.py): sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with
// (dx, dy) = mean - pixel centre; alpha = min(0.999, o exp(-sigma)); a Gaussian is skipped when
// sigma < 0 or alpha < 1/255; a pixel stops before the Gaussian that would bring its transmittance
// to <= 1e-4. Tile t (numbered as hogsa/render/tiles.py) owns the pairs offsets[t]:offsets[t + 1] of
// gaussian_ids, front to back. Tiles run in parallel (for_each_tile); every output element is
// written by one tile, in a fixed order, so results do not depend on the number of threads.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <cmath>
#include <vector>

namespace {

constexpr double kAlphaThreshold = 1.0 / 255.0;
constexpr double kMaxAlpha = 0.999;
constexpr double kTransmittanceThreshold = 1e-4;
constexpr double kSigmaSlack = 1e-3;  // keeps the exp-free test a superset of alpha >= 1/255

// Run body(t, state) for every tile t on torch's intra-op thread count (at::get_num_threads()) of
// std::threads, tiles handed out one at a time (the work per tile varies a lot); each thread owns one
// State. (at::parallel_for would need this file built with OpenMP, a second runtime beside torch's.)
template <typename State, typename Body>
void for_each_tile(int64_t n_tiles, Body&& body) {
  std::atomic<int64_t> next{0};
  auto work = [&] {
    State state;
    for (int64_t t = next++; t < n_tiles; t = next++) body(t, state);
  };
  const int64_t n_threads = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n_tiles));
  std::vector<std::thread> helpers;
  for (int64_t i = 1; i < n_threads; ++i) helpers.emplace_back(work);
  work();
  for (auto& h : helpers) h.join();
}

struct Grid {
  int64_t tile_size, tiles_x, tiles_y, width, height;
};

// The first pixel (x0, y0) of tile t and its image.
inline void tile_origin(const Grid& g, int64_t t, int64_t& image, int64_t& x0, int64_t& y0) {
  const int64_t per_image = g.tiles_x * g.tiles_y;
  image = t / per_image;
  const int64_t in_image = t % per_image;
  x0 = (in_image % g.tiles_x) * g.tile_size;
  y0 = (in_image / g.tiles_x) * g.tile_size;
}

// A Gaussian's parameters with its reach: the pixel centres inside the ellipse sigma <= ln(255 o) +
// slack (outside it alpha < 1/255) lie within (rx, ry) of the mean; valid is false when it reaches none.
template <typename scalar_t>
struct Footprint {
  scalar_t mx, my, a, b, c, opacity, limit;
  double rx, ry;
  bool valid;
};

template <typename scalar_t>
std::vector<Footprint<scalar_t>> footprints(int64_t n, const scalar_t* means2d, const scalar_t* conics,
                                            const scalar_t* opacities) {
  std::vector<Footprint<scalar_t>> out(n);
  const int64_t chunk = 4096;
  for_each_tile<char>((n + chunk - 1) / chunk, [&](int64_t k, char&) {
    for (int64_t i = k * chunk; i < std::min(n, (k + 1) * chunk); ++i) {
      Footprint<scalar_t>& f = out[i];
      f = {means2d[2 * i], means2d[2 * i + 1], conics[3 * i], conics[3 * i + 1], conics[3 * i + 2], opacities[i],
           0, 0, 0, false};
      const double limit = std::log(std::max(double(f.opacity), 1e-30) / kAlphaThreshold) + kSigmaSlack;
      const double det = double(f.a) * f.c - double(f.b) * f.b;
      if (limit < 0 || det <= 0) continue;  // alpha < 1/255 everywhere, or not an ellipse
      // extent of {0.5 d^T Q d <= L}: |dx| <= sqrt(2 L c / det), |dy| <= sqrt(2 L a / det)
      f.limit = scalar_t(limit);
      f.rx = std::sqrt(2 * limit * f.c / det) + 1e-3;
      f.ry = std::sqrt(2 * limit * f.a / det) + 1e-3;
      f.valid = true;
    }
  });
  return out;
}

// The pairs of one tile, gathered contiguously with the pixel box each reaches (pixel centres at
// i + 0.5), clipped to the tile and the image; pairs reaching no pixel of the tile are dropped.
template <typename scalar_t>
struct TileGaussians {
  struct Entry {
    int64_t pair, id;
    int32_t x_lo, x_hi, y_lo, y_hi;  // inclusive pixel box
    scalar_t mx, my, a, b, c, opacity, limit;
  };
  std::vector<Entry> entries;

  void gather(const Grid& g, int64_t x0, int64_t y0, int64_t first, int64_t last, const int64_t* ids,
              const std::vector<Footprint<scalar_t>>& fp) {
    entries.clear();
    const double x_end = double(std::min(x0 + g.tile_size, g.width)) - 1;
    const double y_end = double(std::min(y0 + g.tile_size, g.height)) - 1;
    for (int64_t p = first; p < last; ++p) {
      const int64_t id = ids[p];
      const Footprint<scalar_t>& f = fp[id];
      if (!f.valid) continue;
      const double x_lo = std::max(double(x0), std::ceil(f.mx - f.rx - 0.5));
      const double x_hi = std::min(x_end, std::floor(f.mx + f.rx - 0.5));
      const double y_lo = std::max(double(y0), std::ceil(f.my - f.ry - 0.5));
      const double y_hi = std::min(y_end, std::floor(f.my + f.ry - 0.5));
      if (x_lo > x_hi || y_lo > y_hi) continue;
      entries.push_back({p, id, int32_t(x_lo), int32_t(x_hi), int32_t(y_lo), int32_t(y_hi), f.mx, f.my, f.a, f.b,
                         f.c, f.opacity, f.limit});
    }
  }
};

// sigma, falloff exp(-sigma), raw and clamped alpha of entry e at pixel (x, y); false when gsplat skips it.
template <typename scalar_t>
inline bool splat(const typename TileGaussians<scalar_t>::Entry& e, int64_t x, int64_t y, scalar_t& dx,
                  scalar_t& dy, scalar_t& falloff, scalar_t& raw_alpha, scalar_t& alpha) {
  dx = e.mx - (scalar_t(x) + scalar_t(0.5));
  dy = e.my - (scalar_t(y) + scalar_t(0.5));
  const scalar_t sigma = scalar_t(0.5) * (e.a * dx * dx + e.c * dy * dy) + e.b * dx * dy;
  if (sigma < 0 || sigma > e.limit) return false;
  falloff = std::exp(-sigma);
  raw_alpha = e.opacity * falloff;
  alpha = std::min(raw_alpha, scalar_t(kMaxAlpha));
  return alpha >= scalar_t(kAlphaThreshold);
}

template <typename scalar_t>
void forward_kernel(const Grid& g, const int64_t* offsets, const int64_t* ids, const scalar_t* means2d,
                    const scalar_t* conics, const scalar_t* opacities, const scalar_t* features, int64_t dim,
                    int64_t n_gaussians, int64_t n_tiles, scalar_t* accum, scalar_t* alphas, double* final_t, int64_t* last) {
  const int64_t area = g.tile_size * g.tile_size;
  const auto fp = footprints(n_gaussians, means2d, conics, opacities);
  struct State {
    std::vector<double> transmittance, total, acc;
    std::vector<int64_t> last_pair;
    std::vector<char> done;
    TileGaussians<scalar_t> tg;
  };
  for_each_tile<State>(n_tiles, [&](int64_t t, State& st) {
      auto& [transmittance, total, acc, last_pair, done, tg] = st;
      transmittance.resize(area), total.resize(area), acc.resize(area * dim), last_pair.resize(area);
      done.resize(area);
      int64_t image, x0, y0;
      tile_origin(g, t, image, x0, y0);
      const int64_t w = std::min(x0 + g.tile_size, g.width) - x0, h = std::min(y0 + g.tile_size, g.height) - y0;
      std::fill(transmittance.begin(), transmittance.end(), 1.0);
      std::fill(total.begin(), total.end(), 0.0);
      std::fill(acc.begin(), acc.end(), 0.0);
      std::fill(last_pair.begin(), last_pair.end(), -1);
      std::fill(done.begin(), done.end(), 0);
      int64_t n_done = 0;
      tg.gather(g, x0, y0, offsets[t], offsets[t + 1], ids, fp);
      for (const auto& e : tg.entries) {
        const scalar_t* f = features + e.id * dim;
        for (int64_t y = e.y_lo; y <= e.y_hi; ++y) {
          for (int64_t x = e.x_lo; x <= e.x_hi; ++x) {
            const int64_t q = (y - y0) * g.tile_size + (x - x0);
            if (done[q]) continue;
            scalar_t dx, dy, falloff, raw_alpha, alpha;
            if (!splat<scalar_t>(e, x, y, dx, dy, falloff, raw_alpha, alpha)) continue;
            const double next = transmittance[q] * (1.0 - double(alpha));
            if (next <= kTransmittanceThreshold) {  // this Gaussian and all behind it are excluded
              done[q] = 1, ++n_done;
              continue;
            }
            const double weight = double(alpha) * transmittance[q];
            for (int64_t d = 0; d < dim; ++d) acc[q * dim + d] += weight * double(f[d]);
            total[q] += weight;
            transmittance[q] = next;
            last_pair[q] = e.pair;
          }
        }
        if (n_done == w * h) break;
      }
      for (int64_t y = y0; y < y0 + h; ++y) {
        for (int64_t x = x0; x < x0 + w; ++x) {
          const int64_t q = (y - y0) * g.tile_size + (x - x0), pixel = (image * g.height + y) * g.width + x;
          for (int64_t d = 0; d < dim; ++d) accum[pixel * dim + d] = scalar_t(acc[q * dim + d]);
          alphas[pixel] = scalar_t(total[q]);
          final_t[pixel] = transmittance[q];
          last[pixel] = last_pair[q];
        }
      }
  });
}

// Per pair: d/d(mean x, mean y, a, b, c, opacity, f_1..f_D), summed over the pixels of its tile. The
// pairs are walked back to front from each pixel's last contributor, the transmittance before each
// recovered as T_i = T_{i+1} / (1 - alpha_i) (alpha <= 0.999), as gsplat's backward kernel does.
template <typename scalar_t>
void backward_kernel(const Grid& g, const int64_t* offsets, const int64_t* ids, const scalar_t* means2d,
                     const scalar_t* conics, const scalar_t* opacities, const scalar_t* features, int64_t dim,
                     int64_t n_gaussians, int64_t n_tiles, const double* final_t, const int64_t* last, const scalar_t* grad_accum,
                     const scalar_t* grad_alphas, scalar_t* pair_grads) {
  const int64_t width = 6 + dim, area = g.tile_size * g.tile_size;
  const auto fp = footprints(n_gaussians, means2d, conics, opacities);
  struct State {
    std::vector<double> transmittance, suffix, sums;
    TileGaussians<scalar_t> tg;
  };
  for_each_tile<State>(n_tiles, [&](int64_t t, State& st) {
      auto& [transmittance, suffix, sums, tg] = st;
      transmittance.resize(area), suffix.resize(area), sums.resize(width);
      int64_t image, x0, y0;
      tile_origin(g, t, image, x0, y0);
      const int64_t w = std::min(x0 + g.tile_size, g.width) - x0, h = std::min(y0 + g.tile_size, g.height) - y0;
      for (int64_t y = y0; y < y0 + h; ++y) {
        for (int64_t x = x0; x < x0 + w; ++x) {
          const int64_t q = (y - y0) * g.tile_size + (x - x0);
          transmittance[q] = final_t[(image * g.height + y) * g.width + x];
          suffix[q] = 0.0;  // sum over the Gaussians behind of v_j = alpha_j T_j (f_j . dL/dC + dL/dA)
        }
      }
      tg.gather(g, x0, y0, offsets[t], offsets[t + 1], ids, fp);
      for (auto it = tg.entries.rbegin(); it != tg.entries.rend(); ++it) {
        const auto& e = *it;
        const scalar_t* f = features + e.id * dim;
        std::fill(sums.begin(), sums.end(), 0.0);
        for (int64_t y = e.y_lo; y <= e.y_hi; ++y) {
          for (int64_t x = e.x_lo; x <= e.x_hi; ++x) {
            const int64_t pixel = (image * g.height + y) * g.width + x;
            if (e.pair > last[pixel]) continue;  // behind the pixel's last contributor
            scalar_t dx, dy, falloff, raw_alpha, alpha;
            if (!splat<scalar_t>(e, x, y, dx, dy, falloff, raw_alpha, alpha)) continue;
            const int64_t q = (y - y0) * g.tile_size + (x - x0);
            const double before = transmittance[q] / (1.0 - double(alpha));
            transmittance[q] = before;
            const scalar_t* grad_c = grad_accum + pixel * dim;
            double shade = double(grad_alphas[pixel]);  // f . dL/dC + dL/dA
            for (int64_t d = 0; d < dim; ++d) shade += double(f[d]) * double(grad_c[d]);
            const double weight = double(alpha) * before;
            double grad_alpha = before * shade - suffix[q] / (1.0 - double(alpha));
            suffix[q] += weight * shade;
            if (raw_alpha > scalar_t(kMaxAlpha)) grad_alpha = 0.0;  // clamped alpha: no gradient
            const double grad_sigma = -double(raw_alpha) * grad_alpha;
            sums[0] += grad_sigma * (double(e.a) * dx + double(e.b) * dy);
            sums[1] += grad_sigma * (double(e.b) * dx + double(e.c) * dy);
            sums[2] += 0.5 * grad_sigma * dx * dx;
            sums[3] += grad_sigma * dx * dy;
            sums[4] += 0.5 * grad_sigma * dy * dy;
            sums[5] += double(falloff) * grad_alpha;
            for (int64_t d = 0; d < dim; ++d) sums[6 + d] += weight * double(grad_c[d]);
          }
        }
        scalar_t* out = pair_grads + e.pair * width;
        for (int64_t i = 0; i < width; ++i) out[i] = scalar_t(sums[i]);
      }
  });
}

Grid make_grid(int64_t tile_size, int64_t tiles_x, int64_t tiles_y, int64_t width, int64_t height) {
  return Grid{tile_size, tiles_x, tiles_y, width, height};
}

void check(const torch::Tensor& offsets, const torch::Tensor& ids, const torch::Tensor& means2d,
           const torch::Tensor& conics, const torch::Tensor& opacities, const torch::Tensor& features) {
  for (const auto* x : {&offsets, &ids, &means2d, &conics, &opacities, &features}) {
    TORCH_CHECK(x->device().is_cpu() && x->is_contiguous(), "tile_composite: CPU contiguous tensors expected");
  }
  TORCH_CHECK(offsets.scalar_type() == torch::kLong && ids.scalar_type() == torch::kLong,
              "tile_composite: int64 offsets and ids expected");
  TORCH_CHECK(conics.scalar_type() == means2d.scalar_type() && opacities.scalar_type() == means2d.scalar_type() &&
                  features.scalar_type() == means2d.scalar_type(),
              "tile_composite: means2d, conics, opacities and features must share one dtype");
}

}  // namespace

// Accumulated features [pixels, D], alphas [pixels], and for the backward pass each pixel's final
// transmittance [pixels] float64 and last contributing pair [pixels] int64 (-1: none), pixels = I * H * W.
std::vector<torch::Tensor> forward(torch::Tensor offsets, torch::Tensor ids, torch::Tensor means2d,
                                   torch::Tensor conics, torch::Tensor opacities, torch::Tensor features,
                                   int64_t tile_size, int64_t tiles_x, int64_t tiles_y, int64_t width,
                                   int64_t height) {
  check(offsets, ids, means2d, conics, opacities, features);
  const int64_t n_tiles = offsets.size(0) - 1, dim = features.size(1);
  const int64_t n_pixels = n_tiles / (tiles_x * tiles_y) * height * width;
  auto accum = torch::zeros({n_pixels, dim}, features.options());
  auto alphas = torch::zeros({n_pixels}, features.options());
  auto final_t = torch::ones({n_pixels}, features.options().dtype(torch::kDouble));
  auto last = torch::full({n_pixels}, -1, features.options().dtype(torch::kLong));
  const Grid g = make_grid(tile_size, tiles_x, tiles_y, width, height);
  AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "tile_composite_forward", [&] {
    forward_kernel<scalar_t>(g, offsets.data_ptr<int64_t>(), ids.data_ptr<int64_t>(), means2d.data_ptr<scalar_t>(),
                             conics.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
                             features.data_ptr<scalar_t>(), dim, means2d.size(0), n_tiles, accum.data_ptr<scalar_t>(),
                             alphas.data_ptr<scalar_t>(), final_t.data_ptr<double>(), last.data_ptr<int64_t>());
  });
  return {accum, alphas, final_t, last};
}

// Per-pair gradients [P, 6 + D]: (mean x, mean y, a, b, c, opacity, features).
torch::Tensor backward(torch::Tensor offsets, torch::Tensor ids, torch::Tensor means2d, torch::Tensor conics,
                       torch::Tensor opacities, torch::Tensor features, torch::Tensor final_t,
                       torch::Tensor last, torch::Tensor grad_accum, torch::Tensor grad_alphas, int64_t tile_size, int64_t tiles_x, int64_t tiles_y,
                       int64_t width, int64_t height) {
  check(offsets, ids, means2d, conics, opacities, features);
  TORCH_CHECK(grad_accum.is_contiguous() && grad_alphas.is_contiguous() &&
                  grad_accum.scalar_type() == means2d.scalar_type() &&
                  grad_alphas.scalar_type() == means2d.scalar_type(),
              "tile_composite: contiguous gradients of the inputs' dtype expected");
  const int64_t n_tiles = offsets.size(0) - 1, dim = features.size(1);
  TORCH_CHECK(final_t.is_contiguous() && last.is_contiguous(), "tile_composite: contiguous forward state expected");
  auto pair_grads = torch::zeros({ids.size(0), 6 + dim}, features.options());
  const Grid g = make_grid(tile_size, tiles_x, tiles_y, width, height);
  AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "tile_composite_backward", [&] {
    backward_kernel<scalar_t>(g, offsets.data_ptr<int64_t>(), ids.data_ptr<int64_t>(), means2d.data_ptr<scalar_t>(),
                              conics.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
                              features.data_ptr<scalar_t>(), dim, means2d.size(0), n_tiles, final_t.data_ptr<double>(),
                              last.data_ptr<int64_t>(), grad_accum.data_ptr<scalar_t>(),
                              grad_alphas.data_ptr<scalar_t>(), pair_grads.data_ptr<scalar_t>());
  });
  return pair_grads;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "tile compositing forward");
  m.def("backward", &backward, "tile compositing backward");
}

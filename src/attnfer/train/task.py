"""The Lightning module: a model from the zoo, its losses, optimiser and schedule."""

from __future__ import annotations

import copy
from collections import deque

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn, update_bn

from ..models import create_model
from .choices import OPTIMIZERS, SCHEDULES
from .config import Recipe
from .distill import OnlineTeacher
from .losses import CenterLoss, CrossEntropy, IslandLoss, WeightNormPenalty
from .memory_format import channels_last_is_safe


class FERTask(L.LightningModule):
    """Classification of faces with the recipe's losses; logs loss and accuracy per epoch.

    With ``trainer.ema_decay`` > 0 it also keeps an exponential moving average of the model's
    weights (updated every step, started from the weights training begins with), whose
    batch-norm statistics are recomputed on the last 16 training batches before each validation;
    validation, the best-epoch choice and the saved model then use the average.

    ``channels_last``: whether it trains channels-last, as the recipe asks where that is safe
    (:mod:`attnfer.train.memory_format`).

    ``teacher``: where the recipe names one (``loss.teacher``), its probabilities for each
    training batch, after augmentation and mixup, are the soft part of the target. The teacher
    sees each face at full resolution; ``augment.low_res`` lowers it for the student only."""

    def __init__(
        self,
        recipe: Recipe,
        num_classes: int,
        class_weights: torch.Tensor | None = None,
        teacher: OnlineTeacher | None = None,
    ):
        super().__init__()
        self.recipe = recipe
        self.num_classes = num_classes
        self.teacher = teacher
        cfg = recipe.loss
        self.model = create_model(
            recipe.model.name,
            num_classes=num_classes,
            in_chans=recipe.preprocess.channels,
            input_size=(recipe.preprocess.size, recipe.preprocess.size),
            **recipe.model.kwargs,
        )
        self.channels_last = recipe.trainer.channels_last and channels_last_is_safe(self.model)
        self.classification_loss = CrossEntropy(class_weights, cfg.label_smoothing)
        self.feature_loss: nn.Module | None = None
        if cfg.feature_loss == "center":
            self.feature_loss = CenterLoss(num_classes, self.model.num_features)
        elif cfg.feature_loss == "island":
            self.feature_loss = IslandLoss(num_classes, self.model.num_features, cfg.island_lambda1)
        self.weight_norm: nn.Module | None = None
        if cfg.weight_norm_lambda > 0:
            linears = [m for m in self.model.modules() if isinstance(m, nn.Linear)][-2:]
            self.weight_norm = WeightNormPenalty(linears, cfg.weight_norm_lambda)
        self.ema: nn.Module | None = None
        if recipe.trainer.ema_decay > 0:
            self.ema = copy.deepcopy(self.model).requires_grad_(False)
            self.ema_update = get_ema_multi_avg_fn(recipe.trainer.ema_decay)
            self.register_buffer("ema_started", torch.tensor(False))
            self.recent_inputs: deque[torch.Tensor] = deque(maxlen=16)

    @property
    def eval_model(self) -> nn.Module:
        """The model validated and saved: the weight average where there is one."""
        return self.ema if self.ema is not None else self.model

    def on_fit_start(self) -> None:
        if self.ema is not None and not self.ema_started:  # a resumed run restored its average
            self.ema.load_state_dict(self.model.state_dict())
            self.ema_started.fill_(True)

    @torch.no_grad()
    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.ema is None:
            return
        self.ema_update(list(self.ema.parameters()), list(self.model.parameters()), None)
        self.recent_inputs.append(batch[0].detach())

    def on_validation_epoch_start(self) -> None:
        """Batch-norm statistics for the averaged weights, recomputed from the last training
        batches (running statistics averaged along the way do not fit the averaged weights)."""
        if self.ema is not None and self.recent_inputs:
            update_bn(list(self.recent_inputs), self.ema)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _target(self, y: torch.Tensor, soft: list[torch.Tensor]) -> torch.Tensor:
        """Class indices, or ``(1 - w) * one-hot + w * soft label`` when the batch has them."""
        if not soft:
            return y
        w = self.recipe.loss.soft_labels
        probs = soft[0].float() / soft[0].float().sum(1, keepdim=True).clamp_min(1e-12)
        return (1 - w) * F.one_hot(y, probs.shape[1]).float() + w * probs

    def _mix(
        self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixup: the batch blended with a shuffled copy of itself by a share drawn from
        Beta(a, a), targets alike; returns the images, the targets and the labels of the larger
        share (for the training accuracy)."""
        a = self.recipe.loss.mixup
        share = float(torch.distributions.Beta(a, a).sample())
        order = torch.randperm(len(x), device=x.device)
        if not target.is_floating_point():
            target = F.one_hot(target, self.num_classes).float()
        mixed = share * x + (1 - share) * x[order]
        return mixed, share * target + (1 - share) * target[order], y if share >= 0.5 else y[order]

    def _taught(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(1 - w) * target + w * the teacher's probabilities for x``, the batch as trained on."""
        w = self.recipe.loss.soft_labels
        if not target.is_floating_point():
            target = F.one_hot(target, self.num_classes).float()
        return (1 - w) * target + w * self.teacher(x)

    def training_step(self, batch, batch_idx):
        x, y, *soft = batch
        target = self._target(y, soft)
        if self.recipe.loss.mixup > 0:
            x, target, y = self._mix(x, y, target)
        if self.teacher is not None:
            target = self._taught(x, target)
        if self.recipe.augment is not None:
            x = self.recipe.augment.lower_resolution(x)
        if self.feature_loss is None:
            logits = self.model(x)
            loss = self.classification_loss(logits.float(), target)
        else:
            features = self.model.forward_features(x)
            logits = self.model.classifier(features)
            feature_loss = self.feature_loss(features.float(), y)
            loss = self.classification_loss(logits.float(), target)
            loss = loss + self.recipe.loss.feature_lambda * feature_loss
            self.log_epoch("train_feature_loss", feature_loss)
        if self.weight_norm is not None:
            loss = loss + self.weight_norm()
        acc = (logits.argmax(1) == y).float().mean()
        self.log_epoch("train_loss", loss)
        self.log_epoch("train_acc", acc)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.eval_model(x)
        self.log_epoch("val_loss", F.cross_entropy(logits.float(), y))
        self.log_epoch("val_acc", (logits.argmax(1) == y).float().mean())

    def log_epoch(self, name: str, value: torch.Tensor) -> None:
        """Log the epoch mean of ``value``, averaged over DDP processes, on the progress bar."""
        self.log(name, value, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        opt_cfg, sched_cfg = self.recipe.optimizer, self.recipe.schedule
        groups = [{"params": list(self.model.parameters())}]
        if self.feature_loss is not None:
            centres = list(self.feature_loss.parameters())
            groups.append(
                {"params": centres, "lr": self.recipe.loss.center_lr, "weight_decay": 0.0}
            )
        optimizer = OPTIMIZERS[opt_cfg.name](groups, opt_cfg)
        if self.recipe.stages:
            return optimizer
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        epochs = self.recipe.total_epochs
        scheduler = SCHEDULES[sched_cfg.name](optimizer, sched_cfg, steps, epochs)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
